ALTER TABLE reminders DROP COLUMN failure_reason;
