-- The system of record: one row per custom resource (keyed by its uid, so a
-- name reused after deletion is a new row), the transactional outbox and the
-- consumers' idempotency table. The operator is the only writer.

CREATE TABLE recurring_tasks (
    uid                uuid PRIMARY KEY,
    namespace          text        NOT NULL,
    name               text        NOT NULL,
    owner              text        NOT NULL,
    title              text        NOT NULL,
    rule               text,                     -- the RRULE the schedule means
    time_zone          text        NOT NULL DEFAULT 'UTC',
    anchor             text        NOT NULL DEFAULT 'schedule',
    phase              text        NOT NULL,
    current_task       text,
    next_due_at        timestamptz,
    occurrences        integer     NOT NULL DEFAULT 0,
    last_completed_at  timestamptz,
    generation         bigint      NOT NULL,
    spec               jsonb       NOT NULL,
    status             jsonb       NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    deleted_at         timestamptz
);
CREATE UNIQUE INDEX recurring_tasks_live_name ON recurring_tasks (namespace, name) WHERE deleted_at IS NULL;
CREATE INDEX recurring_tasks_owner ON recurring_tasks (owner, namespace);

CREATE TABLE tasks (
    uid                 uuid PRIMARY KEY,
    namespace           text        NOT NULL,
    name                text        NOT NULL,
    owner               text        NOT NULL,
    title               text        NOT NULL,
    description         text        NOT NULL DEFAULT '',
    priority            text        NOT NULL DEFAULT 'medium',
    tags                text[]      NOT NULL DEFAULT '{}',
    due_at              timestamptz,
    completed           boolean     NOT NULL DEFAULT false,
    completed_at        timestamptz,
    phase               text        NOT NULL,
    recurring_task_uid  uuid,
    occurrence          integer,
    -- The seed's columns: a recurring occurrence carries its schedule's rule,
    -- end and next due; reminder_at/reminder_sent track the earliest reminder.
    recurring_pattern   text,
    recurring_end_date  timestamptz,
    next_occurrence     timestamptz,
    reminder_at         timestamptz,
    reminder_sent       boolean     NOT NULL DEFAULT false,
    generation          bigint      NOT NULL,
    spec                jsonb       NOT NULL,
    status              jsonb       NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    deleted_at          timestamptz
);
CREATE UNIQUE INDEX tasks_live_name ON tasks (namespace, name) WHERE deleted_at IS NULL;
CREATE INDEX tasks_owner_due ON tasks (owner, due_at);
CREATE INDEX tasks_recurring_task ON tasks (recurring_task_uid, occurrence) WHERE recurring_task_uid IS NOT NULL;
-- The seed's two partial indexes.
CREATE INDEX tasks_next_occurrence ON tasks (next_occurrence) WHERE next_occurrence IS NOT NULL;
CREATE INDEX tasks_pending_reminder ON tasks (reminder_at, owner) WHERE reminder_at IS NOT NULL AND reminder_sent = false;

CREATE TABLE reminders (
    uid          uuid PRIMARY KEY,
    namespace    text        NOT NULL,
    name         text        NOT NULL,
    task_uid     uuid,
    task_name    text        NOT NULL,
    owner        text        NOT NULL,
    recipient    text,
    fire_at      timestamptz,
    phase        text        NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0,
    sent_at      timestamptz,
    last_error   text,
    generation   bigint      NOT NULL,
    spec         jsonb       NOT NULL,
    status       jsonb       NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    deleted_at   timestamptz
);
CREATE UNIQUE INDEX reminders_live_name ON reminders (namespace, name) WHERE deleted_at IS NULL;
CREATE INDEX reminders_due ON reminders (fire_at) WHERE phase IN ('Pending', 'Scheduled');

-- The transactional outbox: a change and its event commit together. Event
-- ids are derived from what happened (UUIDv5 of e.g. "task.completed:<uid>:
-- <instant>"), so a handler re-run after a crash appends nothing new.
CREATE TABLE outbox (
    id               bigserial   PRIMARY KEY,
    event_id         uuid        NOT NULL UNIQUE,
    topic            text        NOT NULL,
    event_type       text        NOT NULL,
    subject          text        NOT NULL,
    partition_key    text        NOT NULL,
    payload          jsonb       NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    published_at     timestamptz,
    attempts         integer     NOT NULL DEFAULT 0,
    last_error       text
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Events that kept failing to publish: visible and retryable by an admin.
CREATE TABLE dead_letters (
    id           bigserial   PRIMARY KEY,
    outbox_id    bigint      NOT NULL,
    event_id     uuid        NOT NULL,
    topic        text        NOT NULL,
    payload      jsonb       NOT NULL,
    attempts     integer     NOT NULL,
    last_error   text,
    failed_at    timestamptz NOT NULL DEFAULT now(),
    retried_at   timestamptz
);

-- Consumers drop duplicates by CloudEvent id.
CREATE TABLE processed_events (
    consumer      text        NOT NULL,
    event_id      text        NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
