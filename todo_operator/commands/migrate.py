"""``todo-operator migrate up|down``: apply or roll back the schema migrations."""

from __future__ import annotations

import argparse
import os


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("direction", choices=["up", "down", "status"])
    parser.add_argument("--steps", type=int, default=1, help="with 'down': how many migrations to roll back")
    parser.add_argument(
        "--database-url", default=os.environ.get("TODO_DATABASE_URL"), help="default: $TODO_DATABASE_URL"
    )


def run(args: argparse.Namespace) -> int:
    import psycopg

    from todo_operator.cli import UsageError
    from todo_operator.store import schema

    if not args.database_url:
        raise UsageError("no database: pass --database-url or set TODO_DATABASE_URL")
    if args.steps < 1:
        raise UsageError(f"--steps must be at least 1, got {args.steps}")
    try:
        if args.direction == "up":
            done = schema.migrate_up(args.database_url)
            print(f"applied {len(done)} migration(s){': ' + ', '.join(done) if done else ''}")
        elif args.direction == "down":
            done = schema.migrate_down(args.database_url, steps=args.steps)
            print(f"rolled back {len(done)} migration(s){': ' + ', '.join(done) if done else ''}")
        else:
            for migration_id in schema.applied(args.database_url):
                print(f"applied  {migration_id}")
    except psycopg.OperationalError as error:
        raise UsageError(f"cannot reach the database: {str(error).strip().splitlines()[0]}") from error
    return 0
