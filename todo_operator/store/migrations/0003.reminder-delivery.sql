-- What a reminder's e-mail says and how it is delivered, so that
-- `todo-operator notify` (a CronJob's pod) needs nothing but this row.
ALTER TABLE reminders
    ADD COLUMN task_title   text        NOT NULL DEFAULT '',
    ADD COLUMN task_due_at  timestamptz,
    ADD COLUMN time_zone    text        NOT NULL DEFAULT 'UTC',
    ADD COLUMN message      text        NOT NULL DEFAULT '',
    ADD COLUMN delivery     text        NOT NULL DEFAULT 'cronjob',
    ADD COLUMN late         boolean     NOT NULL DEFAULT false;

-- The inline dispatcher asks "what is due next?" of this index only.
CREATE INDEX reminders_inline_due ON reminders (fire_at) WHERE phase = 'Pending' AND deleted_at IS NULL;
-- The overdue scheduler asks "which open task falls due next?".
CREATE INDEX tasks_open_due ON tasks (due_at) WHERE phase = 'Open' AND deleted_at IS NULL;
