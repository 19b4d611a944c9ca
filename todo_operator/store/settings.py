"""What ``todo-operator migrate`` reads from the environment (a class, so the settings registry sees it)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MigrateSettings(BaseSettings):
    """What ``migrate`` reads from the environment."""

    model_config = SettingsConfigDict(env_prefix="TODO_", extra="ignore")

    database_url: str | None = Field(default=None, description="PostgreSQL DSN; --database-url wins")
