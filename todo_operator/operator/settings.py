"""The operator's settings, from the environment (``TODO_*``), loaded once at start-up."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from todo_operator.channels import mail
from todo_operator.domain import resources, timing
from todo_operator.domain.scope import NamespaceScope, check_glob


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TODO_", extra="ignore")

    database_url: str = Field(description="PostgreSQL DSN, e.g. postgresql://todo@db:5432/todo")
    database_pool_size: int = Field(
        default=10, ge=1, le=100, description="PostgreSQL connections held at most"
    )
    kube_api_url: str | None = Field(
        default=None,
        description="talk to this API server (the devstack emulator); default: kubeconfig or in-cluster",
    )
    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="namespaces to watch (comma-separated globs, * and ?); empty: the whole cluster",
    )
    namespaces_excluded: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="namespaces never watched, even when TODO_NAMESPACES matches them (comma-separated"
        " globs): how the chart keeps operator shards disjoint",
    )
    shard: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$",
        description="this operator is one shard of several (the chart's operator.shards): its Kopf"
        " peering is the ClusterKopfPeering TODO_PEERING_NAME whichever namespaces it serves, and"
        " its Kubernetes Events name it",
    )
    standalone: bool = Field(default=True, description="run without Kopf peering (one replica)")
    peering_name: str = Field(
        default="todo-operator", description="Kopf peering object shared by the replicas"
    )
    peering_priority: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="Kopf peering priority; default: random per process, so that of the replicas"
        " of one Deployment exactly one acts (Kopf freezes all replicas of equal priority)",
    )
    retry_delay_seconds: float = Field(
        default=10.0, gt=0, description="delay before retrying a transient failure"
    )
    watch_server_timeout_seconds: int = Field(
        default=300,
        ge=1,
        description="the API server ends each watch after this long (Kopf: watches may stall)",
    )
    # Kopf runs one worker (an asyncio task) per object with pending events; a burst of
    # thousands of objects would otherwise run thousands of handlers at once, each holding
    # its body and a request in flight (benchmarks/operator_scale.py: memory).
    worker_limit: int = Field(default=100, ge=1, description="objects handled at once")
    worker_idle_seconds: float = Field(
        default=1.0, gt=0, description="an idle per-object worker exits after this long, freeing its slot"
    )
    min_occurrence_spacing_minutes: int = Field(
        default=5, ge=1, description="a RecurringTask whose occurrences come closer together is refused"
    )

    # Reminders (docs/REMINDERS.md)
    listen_notify: bool = Field(
        default=True,
        description="learn of new work written elsewhere through PostgreSQL LISTEN/NOTIFY;"
        " false: look every minute (behind PgBouncer in transaction mode)",
    )
    reminder_delivery: Literal["cronjob", "inline", "dapr-jobs"] = Field(
        default="cronjob",
        description="cronjob: one CronJob per reminder; inline: the operator sends them itself;"
        " dapr-jobs: one Dapr job per reminder on the Dapr Scheduler",
    )
    dapr_app_port: int = Field(
        default=6002,
        ge=1,
        le=65535,
        description="with dapr-jobs delivery: the loopback port the sidecar's job triggers"
        " (POST /job/<name>) reach",
    )
    reminder_job_retry_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="with dapr-jobs delivery: how long the Scheduler waits before triggering again"
        " when the operator did not answer a job",
    )
    reminder_job_max_retries: int = Field(
        default=30,
        ge=0,
        le=10_000,
        description="with dapr-jobs delivery: triggers tried again at most; then the catch-up of"
        " reminders that did not fire takes over",
    )
    # Dapr's own convention is DAPR_HTTP_PORT (default 3500) on the loopback interface.
    dapr_http_endpoint: str = Field(
        default_factory=lambda: f"http://127.0.0.1:{os.environ.get('DAPR_HTTP_PORT', '3500')}",
        description="the Dapr sidecar's HTTP API; default: http://127.0.0.1:$DAPR_HTTP_PORT (3500 if unset)",
    )
    notify_image: str = Field(
        default="ghcr.io/todo-dev/todo-operator:0.1.0",  # the chart's image at this version (a test holds it)
        description="image of reminder Jobs (keep it the operator's)",
    )
    notify_service_account: str = Field(
        default="todo-operator-notify", description="ServiceAccount of reminder Jobs"
    )
    notify_secret: str = Field(
        default="todo-operator-notify", description="Secret with the notify pod's TODO_* env"
    )
    notify_job_template: str | None = Field(
        default=None,
        description="a file with the JobTemplateSpec of reminder Jobs (the Helm chart mounts one)",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="the operator's log level when `run` is given no --log-level"
    )
    dapr_enabled: bool = Field(
        default=True,
        description="run the outbox relay beside the operator (publishes through the Dapr sidecar)",
    )
    notify_namespace: str | None = Field(
        default=None,
        description="where reminder CronJobs/Jobs run (the chart: its namespace); default: the reminder's",
    )
    reminder_grace_minutes: int = Field(
        default=5, ge=1, le=60, description="a reminder this late is still sent as usual (docs/REMINDERS.md)"
    )
    reminder_look_back_hours: int = Field(
        default=24, ge=1, le=24 * 30, description="a reminder this late is sent marked late; later: Missed"
    )
    reminder_retries: int = Field(default=10, ge=0, le=20, description="SMTP retries before Failed")
    reminder_retry_first_seconds: float = Field(
        default=1.0, gt=0, description="first wait before an SMTP retry, then doubling"
    )
    reminder_retry_cap_seconds: float = Field(
        default=512.0, gt=0, description="longest wait between SMTP retries"
    )
    reminder_recipient_domains: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="besides the task's owner, reminders may go to addresses of these domains"
        " (comma-separated; * allows any address); empty: the owner only",
    )
    task_link_template: str | None = Field(
        default=None,
        description="a link in reminder e-mails, e.g. https://todo.example.com/{namespace}/{task}",
    )
    # SMTP: the names docs/DEPLOYMENT.md and the chart tell users to put in the notify Secret.
    smtp_host: str = Field(default="127.0.0.1", description="the SMTP server reminders are sent through")
    smtp_port: int = Field(default=25, ge=1, le=65535, description="its port (587: STARTTLS, 465: TLS)")
    smtp_username: str | None = Field(default=None, description="log in as this user; unset: no login")
    smtp_password: SecretStr | None = Field(
        default=None, description="the SMTP password: set TODO_SMTP_STARTTLS or TODO_SMTP_USE_TLS with it"
    )
    smtp_from: str = Field(default="todo-operator@localhost", description="the From address of reminders")
    smtp_starttls: bool = Field(default=False, description="upgrade the connection with STARTTLS")
    smtp_use_tls: bool = Field(default=False, description="connect with TLS from the start (implicit TLS)")
    smtp_insecure_allow_password_without_tls: bool = Field(
        default=False,
        description="send TODO_SMTP_PASSWORD over a connection without TLS (only for a relay on the same"
        " host or pod); without it a password without TODO_SMTP_STARTTLS or TODO_SMTP_USE_TLS is refused",
    )

    @model_validator(mode="after")
    def _password_only_over_tls(self) -> OperatorSettings:
        # Issue #16: following the docs used to send the password in clear, and nothing said so.
        if self.smtp_starttls and self.smtp_use_tls:
            raise ValueError("set at most one of TODO_SMTP_STARTTLS and TODO_SMTP_USE_TLS")
        if (
            self.smtp_password is not None
            and not (self.smtp_starttls or self.smtp_use_tls)
            and not self.smtp_insecure_allow_password_without_tls
        ):
            raise ValueError(
                "TODO_SMTP_PASSWORD is set but neither TODO_SMTP_STARTTLS nor TODO_SMTP_USE_TLS:"
                " the password would cross the network in clear"
                " (TODO_SMTP_INSECURE_ALLOW_PASSWORD_WITHOUT_TLS=true allows it)"
            )
        return self

    @field_validator("namespaces", "namespaces_excluded", "reminder_recipient_domains", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("namespaces", "namespaces_excluded")
    @classmethod
    def _globs(cls, globs: list[str]) -> list[str]:
        return [check_glob(glob) for glob in globs]

    @field_validator("reminder_recipient_domains")
    @classmethod
    def _domains(cls, domains: list[str]) -> list[str]:
        for domain in domains:
            if domain != "*" and not re.fullmatch(resources.EMAIL_DOMAIN_PATTERN, domain):
                raise ValueError(f"{domain!r} is not a domain name (e.g. example.com) or *")
        return [domain.casefold() for domain in domains]

    def scope(self) -> NamespaceScope:
        """The namespaces this operator serves: what Kopf watches and what it takes from the database."""
        return NamespaceScope(included=tuple(self.namespaces), excluded=tuple(self.namespaces_excluded))

    @property
    def min_occurrence_spacing(self) -> timedelta:
        return timedelta(minutes=self.min_occurrence_spacing_minutes)

    def smtp(self) -> mail.SmtpSettings:
        return mail.SmtpSettings(
            host=self.smtp_host,
            port=self.smtp_port,
            username=self.smtp_username,
            password=self.smtp_password.get_secret_value() if self.smtp_password else None,
            sender=self.smtp_from,
            starttls=self.smtp_starttls,
            use_tls=self.smtp_use_tls,
        )

    def retry(self) -> mail.RetryPolicy:
        return mail.RetryPolicy(
            retries=self.reminder_retries,
            first=timedelta(seconds=self.reminder_retry_first_seconds),
            cap=timedelta(seconds=self.reminder_retry_cap_seconds),
        )

    def recipients(self) -> timing.RecipientPolicy:
        return timing.RecipientPolicy(domains=frozenset(self.reminder_recipient_domains))

    def job_retries(self) -> timing.JobRetries:
        return timing.JobRetries(
            interval=timedelta(seconds=self.reminder_job_retry_seconds),
            max_retries=self.reminder_job_max_retries,
        )

    def catch_up(self) -> timing.CatchUpPolicy:
        return timing.CatchUpPolicy(
            grace=timedelta(minutes=self.reminder_grace_minutes),
            look_back=timedelta(hours=self.reminder_look_back_hours),
        )


def load_settings(**overrides: Any) -> OperatorSettings:
    """The settings from ``TODO_*`` variables; bad or missing ones as one readable line (UsageError)."""
    from todo_operator.usage import UsageError  # the CLI's error type: every caller is a command

    try:
        return OperatorSettings(**overrides)
    except ValidationError as error:
        raise UsageError.from_settings(error, prefix="TODO_") from error
