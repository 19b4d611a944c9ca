DROP INDEX tasks_owner_created;
ALTER TABLE recurring_tasks DROP COLUMN search;
DROP INDEX tasks_search;
ALTER TABLE tasks DROP COLUMN search;
DROP FUNCTION todo_task_search(text, text, text[]);
