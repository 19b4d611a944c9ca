-- What the REST shim's lists need: full-text search (`q`) over a task's
-- title, description and tags, and over its schedule's rule (so "weekly"
-- finds the occurrences of a weekly recurring task), and an index per owner
-- for the default order. The vectors are generated columns: the operator's
-- upserts stay as they are and cannot forget to fill them.

-- array_to_string is only STABLE (element output functions could depend on
-- settings); for text[] it is not, and a generated column needs IMMUTABLE.
CREATE FUNCTION todo_task_search(title text, description text, tags text[]) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN setweight(to_tsvector('english'::regconfig, title), 'A')
        || setweight(to_tsvector('english'::regconfig, array_to_string(tags, ' ')), 'B')
        || setweight(to_tsvector('english'::regconfig, description), 'C');

ALTER TABLE tasks ADD COLUMN search tsvector
    GENERATED ALWAYS AS (todo_task_search(title, description, tags)) STORED;
CREATE INDEX tasks_search ON tasks USING gin (search);

-- "FREQ=WEEKLY;BYDAY=MO,TH" is one token to the parser: split it into words first.
ALTER TABLE recurring_tasks ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('english'::regconfig, translate(coalesce(rule, ''), '=;,', '   '))) STORED;

-- Lists are per owner and namespace; the default order is creation, newest first.
CREATE INDEX tasks_owner_created ON tasks (owner, namespace, created_at, uid);
