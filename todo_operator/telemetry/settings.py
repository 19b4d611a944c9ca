"""Telemetry settings shared by every process (``TODO_*`` environment variables)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TelemetrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TODO_", extra="ignore")

    log_format: Literal["json", "text"] = Field(
        default="json", description="json: one JSON object a line on stdout (production); text: for people"
    )
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="serve Prometheus /metrics on this port (the chart: 9090)"
    )
    metrics_host: str = Field(
        default="0.0.0.0",  # noqa: S104  # scraped from other pods; the NetworkPolicy limits who
        description="address /metrics listens on",
    )
    metrics_max_age_seconds: float = Field(
        default=5.0, ge=0, description="figures read from PostgreSQL are reused this long between scrapes"
    )
    zipkin_endpoint: str | None = Field(
        default=None, description="export traces here, e.g. http://zipkin:9411/api/v2/spans; unset: none"
    )
    trace_sample_ratio: float = Field(
        default=1.0, ge=0.0, le=1.0, description="share of new traces kept: 1.0 in dev, 0.1 in production"
    )
