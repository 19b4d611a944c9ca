"""``todo-operator migrate up|down``: apply or roll back the schema migrations."""

from __future__ import annotations

import argparse
import os

from todo_operator.store.settings import MigrateSettings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("direction", choices=["up", "down", "status"])
    parser.add_argument("--steps", type=int, default=1, help="with 'down': how many migrations to roll back")
    parser.add_argument("--database-url", help="default: $TODO_DATABASE_URL")


def run(args: argparse.Namespace) -> int:
    import psycopg

    from todo_operator import settings_registry
    from todo_operator.store import schema
    from todo_operator.usage import UsageError

    settings_registry.refuse_unknown(os.environ)
    database_url = args.database_url or MigrateSettings().database_url
    if not database_url:
        raise UsageError("no database: pass --database-url or set TODO_DATABASE_URL")
    if args.steps < 1:
        raise UsageError(f"--steps must be at least 1, got {args.steps}")
    try:
        if args.direction == "up":
            done = schema.migrate_up(database_url)
            print(f"applied {len(done)} migration(s){': ' + ', '.join(done) if done else ''}")
        elif args.direction == "down":
            done = schema.migrate_down(database_url, steps=args.steps)
            print(f"rolled back {len(done)} migration(s){': ' + ', '.join(done) if done else ''}")
        else:
            for migration_id in schema.applied(database_url):
                print(f"applied  {migration_id}")
    except psycopg.OperationalError as error:
        raise UsageError(f"cannot reach the database: {str(error).strip().splitlines()[0]}") from error
    return 0
