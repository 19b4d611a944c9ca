DROP INDEX reminders_task;
DELETE FROM dead_letters WHERE reminder_uid IS NOT NULL;
ALTER TABLE dead_letters ALTER COLUMN outbox_id SET NOT NULL;
ALTER TABLE dead_letters DROP COLUMN reminder_uid;
