-- Between the outbox and the consumers: what the relay needs to publish in
-- order with several replicas, what a dead letter needs to be re-queued as
-- the same event, and the consumers' first effect (the activity feed).

-- The W3C trace context of the change, carried into the CloudEvent.
ALTER TABLE outbox ADD COLUMN traceparent text;
-- A relay leases the rows it is publishing; a relay that dies lets its lease
-- run out and another one publishes the rows again (at least once).
ALTER TABLE outbox ADD COLUMN claimed_by text;
ALTER TABLE outbox ADD COLUMN claimed_until timestamptz;
-- After a failure that is this row's own (rejected, or failed while others in
-- the same request went through) the row waits; later rows of its partition
-- key wait behind it, so one user's events keep their order.
ALTER TABLE outbox ADD COLUMN next_attempt_at timestamptz;
-- The rows that hold back later rows of their partition key (leased, or
-- waited on after a failure): few at any time, found without a scan.
CREATE INDEX outbox_holding ON outbox (partition_key, id)
    WHERE published_at IS NULL AND (claimed_until IS NOT NULL OR next_attempt_at IS NOT NULL);
-- Pruning published rows after the retention period.
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Enough to re-queue a dead letter as the very same event (same id).
ALTER TABLE dead_letters ADD COLUMN event_type text;
ALTER TABLE dead_letters ADD COLUMN subject text;
ALTER TABLE dead_letters ADD COLUMN partition_key text;
ALTER TABLE dead_letters ADD COLUMN traceparent text;
ALTER TABLE dead_letters ADD COLUMN created_at timestamptz;
CREATE INDEX dead_letters_waiting ON dead_letters (failed_at) WHERE retried_at IS NULL;

-- A user's activity feed, written by the activity consumer (served by the REST shim).
CREATE TABLE activity (
    id           bigserial   PRIMARY KEY,
    owner        text        NOT NULL,
    event_id     text        NOT NULL UNIQUE,
    event_type   text        NOT NULL,
    subject      text        NOT NULL,
    summary      text        NOT NULL,
    occurred_at  timestamptz NOT NULL
);
CREATE INDEX activity_owner_time ON activity (owner, occurred_at DESC);
