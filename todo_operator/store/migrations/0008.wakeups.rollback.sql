DROP TRIGGER tasks_wake_due_work ON tasks;
DROP TRIGGER reminders_wake_due_work ON reminders;
DROP FUNCTION todo_notify_due_work();
DROP TRIGGER outbox_wakes_relays ON outbox;
DROP FUNCTION todo_notify_outbox();
