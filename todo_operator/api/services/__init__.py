"""What the routes do, without HTTP: one class per resource, over the API server and PostgreSQL.

Consistency, as a user sees it:

* a write (create, patch, complete, delete) goes to the API server and
  returns the object as the API server stored it, with its ETag;
* ``GET`` of one object by name reads the API server too, so a read right
  after a write sees it (read-your-writes); only history — a completed
  occurrence the cluster pruned — comes from PostgreSQL (``live: false``);
* lists, filters, search and the activity feed read PostgreSQL, which the
  operator updates a few milliseconds after each change: a list right after
  a write may not show it yet (eventual consistency; poll or GET by name).

Ownership is checked on every object, on ``spec.owner`` (for Reminders: the
owner of their task); another user's object answers 404, exactly as a name
that does not exist.
"""

from todo_operator.api.services.activity import Activity
from todo_operator.api.services.common import Objects, Pager, Stored
from todo_operator.api.services.recurring_tasks import RecurringTasks
from todo_operator.api.services.reminders import Reminders
from todo_operator.api.services.tasks import TaskListQuery, Tasks, parse_sort

__all__ = [
    "Activity",
    "Objects",
    "Pager",
    "RecurringTasks",
    "Reminders",
    "Stored",
    "TaskListQuery",
    "Tasks",
    "parse_sort",
]
