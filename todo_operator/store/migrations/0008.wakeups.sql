-- Wake-ups: every writer of work tells the processes that do it, through
-- PostgreSQL's LISTEN/NOTIFY, in the same transaction as the write (a
-- notification is delivered at commit, and never for a rolled-back write).
-- Triggers rather than calls in the code that writes: whoever writes the row
-- (the operator, the API, a restore, a hand-run UPDATE) wakes the workers.
-- Row triggers with WHEN: a statement that changes no such row notifies
-- nobody, and NOTIFY folds identical notifications of one transaction into one.

-- The outbox relays: a row can be claimed (new, given back, or waiting out a
-- failure whose time the relays work out themselves).
CREATE FUNCTION todo_notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('todo_outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_wakes_relays
    AFTER INSERT OR UPDATE ON outbox
    FOR EACH ROW
    WHEN (NEW.published_at IS NULL AND NEW.claimed_until IS NULL)
    EXECUTE FUNCTION todo_notify_outbox();

-- The time-driven work (operator/due_work.py): a reminder waiting for its
-- moment, or an open task with a due time, was made or changed.
CREATE FUNCTION todo_notify_due_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('todo_due_work', '');
    RETURN NULL;
END $$;

CREATE TRIGGER reminders_wake_due_work
    AFTER INSERT OR UPDATE OF phase, fire_at, late, deleted_at ON reminders
    FOR EACH ROW
    WHEN (NEW.phase IN ('Pending', 'Scheduled') AND NEW.deleted_at IS NULL)
    EXECUTE FUNCTION todo_notify_due_work();

CREATE TRIGGER tasks_wake_due_work
    AFTER INSERT OR UPDATE OF phase, due_at, deleted_at ON tasks
    FOR EACH ROW
    WHEN (NEW.phase = 'Open' AND NEW.due_at IS NOT NULL AND NEW.deleted_at IS NULL)
    EXECUTE FUNCTION todo_notify_due_work();
