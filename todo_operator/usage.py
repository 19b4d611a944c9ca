"""The one error type for bad input a command detected itself: one line on stderr, exit code 2.

Here, at the bottom of the layers, rather than in ``cli.py``: the commands
and the settings they read raise it, and they sit below the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pydantic is imported by the commands that use it, not to start the CLI
    from pydantic import ValidationError


class UsageError(Exception):
    """Bad input a command detected itself; reported as one line, exit code 2."""

    @classmethod
    def from_settings(cls, error: ValidationError, *, prefix: str) -> UsageError:
        """Bad settings as one line, each named as it is set: ``TODO_API_JWT_SECRET: ...``."""
        return cls(
            "; ".join(
                f"{prefix}{'_'.join(map(str, problem['loc'])).upper()}: {problem['msg']}"
                if problem["loc"]
                else problem["msg"].removeprefix("Value error, ")
                for problem in error.errors()
            )
        )
