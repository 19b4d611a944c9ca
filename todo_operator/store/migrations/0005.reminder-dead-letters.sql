-- A reminder whose delivery failed for good (retries exhausted, or refused)
-- leaves a dead letter too: an admin who fixed the cause retries it, and it
-- is sent again (the same list and retry endpoint as events).
ALTER TABLE dead_letters ADD COLUMN reminder_uid uuid;
ALTER TABLE dead_letters ALTER COLUMN outbox_id DROP NOT NULL;

-- A task's reminders, found without a scan when the task changes.
CREATE INDEX reminders_task ON reminders (task_uid) WHERE deleted_at IS NULL;
