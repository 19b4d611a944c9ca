"""The operator's settings, from the environment (``TODO_*``), loaded once at start-up."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TODO_", extra="ignore")

    database_url: str = Field(description="PostgreSQL DSN, e.g. postgresql://todo@db:5432/todo")
    database_pool_size: int = Field(default=10, ge=1, le=100)
    kube_api_url: str | None = Field(
        default=None,
        description="talk to this API server (the devstack emulator); default: kubeconfig or in-cluster",
    )
    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="namespaces to watch (comma-separated globs); empty: the whole cluster",
    )
    standalone: bool = Field(default=True, description="run without Kopf peering (one replica)")
    peering_name: str = "todo-operator"
    retry_delay_seconds: float = Field(
        default=10.0, gt=0, description="delay before retrying a transient failure"
    )
    watch_server_timeout_seconds: int = Field(default=300, ge=1)
    min_occurrence_spacing_minutes: int = Field(default=5, ge=1)

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @property
    def min_occurrence_spacing(self) -> timedelta:
        return timedelta(minutes=self.min_occurrence_spacing_minutes)
