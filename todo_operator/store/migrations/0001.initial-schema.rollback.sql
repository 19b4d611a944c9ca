DROP TABLE processed_events;
DROP TABLE dead_letters;
DROP TABLE outbox;
DROP TABLE reminders;
DROP TABLE tasks;
DROP TABLE recurring_tasks;
