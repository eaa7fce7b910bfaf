"""Tenant settings: every command-line flag also reads a ``QP_*`` environment variable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("qp-tenant", appauthor=False))


class Settings(BaseSettings):
    """Settings of one tenant process (the flags and QP_* variables in README.md)."""

    model_config = SettingsConfigDict(env_prefix="QP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""
    public_url: str = ""
    # Master keys never reach a repr, a log line or an error message.
    secret_key: str = Field("", repr=False)
    # Older master keys, comma-separated, still accepted for reading during a key rotation.
    previous_secret_keys: Annotated[list[str], NoDecode] = Field(default_factory=list,
                                                                  repr=False)

    token_lifetime_days: int = Field(365, ge=1, le=3650)
    expiry_warning_days: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [30, 7, 1])
    scheduler_interval_seconds: float = Field(3600.0, gt=0)
    duplicate_window_seconds: int = Field(600, ge=0)

    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = Field("", repr=False)
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_from: str = "qp-tenant@localhost"
    smtp_timeout_seconds: float = Field(30.0, gt=0)
    # Failures (rejected triggers, failed resets) within this window go out as one mail.
    alert_batch_seconds: float = Field(60.0, ge=0)
    alert_retry_seconds: float = Field(30.0, gt=0)  # first back-off; doubles per attempt
    alert_max_attempts: int = Field(5, ge=1, le=20)

    itglue_base_url: str = ""
    # Microsoft 365: where Entra ID's login endpoint and Microsoft Graph are (an emulator or a
    # proxy in tests), an extra CA certificate (PEM) trusted for both, and how long a reset
    # keeps retrying after Graph's 429 Retry-After before it fails as throttled.
    m365_login_url: str = "https://login.microsoftonline.com"
    m365_graph_url: str = "https://graph.microsoft.com"
    m365_ca_file: str = ""
    m365_max_throttle_seconds: float = Field(60.0, ge=0, le=90)

    access_token_ttl_seconds: int = Field(900, ge=30)
    refresh_token_ttl_days: int = Field(30, ge=1)
    login_max_failures: int = Field(5, ge=1)
    login_window_seconds: int = Field(300, ge=1)
    # Per email from any address (a spray): after this many failures in the window, one
    # attempt per delay; addresses the user signed in from recently are exempt.
    login_email_max_failures: int = Field(20, ge=1)
    login_email_delay_seconds: int = Field(10, ge=1)
    login_known_address_days: int = Field(30, ge=1)
    webhook_rate_limit_per_minute: int = Field(120_000, ge=10_000)
    webhook_max_batch: int = Field(256, ge=1)
    # Refused webhook calls (bad bodies, revoked or expired URLs) per token and minute before
    # they are answered 429; accepted triggers have the budget above. Per process.
    webhook_refusal_limit_per_minute: int = Field(600, ge=1)
    # Live event streams one user may hold open at once on one process.
    streams_per_user: int = Field(8, ge=1)
    # SQLite runs in WAL mode; FULL flushes every commit (a 202 survives power loss), NORMAL
    # keeps commits through a kill -9 of this process only; docs/webhook.md.
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "FULL"
    stream_poll_seconds: float = Field(2.0, gt=0)
    sse_ping_seconds: float = Field(15.0, gt=0)
    # After SIGTERM: how long requests in flight may run before uvicorn cancels them (a
    # cancelled webhook still waits for its commit; see TriggerIngest.submit).
    shutdown_grace_seconds: int = Field(10, ge=1, le=80)
    setup_token: str = ""
    log_level: str = "INFO"
    # reset pipeline
    pipeline_poll_seconds: float = Field(1.0, gt=0)
    pipeline_concurrency: int = Field(16, ge=1)
    itglue_max_attempts: int = Field(5, ge=1)
    itglue_retry_base_seconds: float = Field(2.0, ge=0)
    itglue_api_user_name: str = "IT Glue API"
    # The IT Glue watcher (docs/itglue-watcher.md): how often it lists changed passwords (0 =
    # off), the share of IT Glue's 3,000 requests / 5 minutes it may spend, and how long a
    # change it found may wait for its webhook before the workflow is reported as not calling.
    itglue_watch_seconds: float = Field(60.0, ge=0)
    itglue_watch_budget: float = Field(0.2, gt=0, le=1)
    itglue_watch_grace_seconds: float = Field(180.0, ge=0)
    reset_lease_seconds: float = Field(120.0, gt=0)
    reset_max_attempts: int = Field(3, ge=1)
    reset_retry_base_seconds: float = Field(5.0, ge=0)
    reset_max_wait_seconds: float = Field(3600.0, gt=0)
    agent_offline_seconds: float = Field(90.0, gt=0)
    agent_poll_fallback_seconds: float = Field(2.0, gt=0)
    agent_enrollment_code_ttl_seconds: float = Field(3600.0, gt=0)

    @field_validator("expiry_warning_days", mode="before")
    @classmethod
    def _parse_days(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.split(",") if part.strip()]
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("previous_secret_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("expiry_warning_days")
    @classmethod
    def _sort_days(cls, value: list[int]) -> list[int]:
        if any(day < 0 for day in value):
            raise ValueError("expiry warning days must be 0 or more")
        return sorted(set(value), reverse=True)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'qp-tenant.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")
