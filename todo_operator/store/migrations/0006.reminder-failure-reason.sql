-- Why a reminder ended Failed, as the Reminder's Ready condition says it
-- (Missed, Rejected, RetriesExhausted, Unsendable, RecipientNotAllowed), so
-- that the status written later by another process (a notify Job's, the
-- operator's) names the same reason without reading it out of the error text.
ALTER TABLE reminders ADD COLUMN failure_reason text;
UPDATE reminders SET failure_reason = 'Missed' WHERE phase = 'Failed' AND starts_with(last_error, 'missed:');
