"""Database tables. Every row carries its tenant; queries always filter on it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every dialect (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "email"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(32), default="technician")
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RefreshToken(Base):
    """One refresh token of a sign-in family; used tokens are kept to detect reuse."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[str] = mapped_column(String(64), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AccessToken(Base):
    __tablename__ = "access_tokens"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[str] = mapped_column(String(64), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class ITGlueIntegration(Base):
    __tablename__ = "itglue_integrations"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), unique=True
    )
    region: Mapped[str] = mapped_column(String(8))
    api_key_encrypted: Mapped[str] = mapped_column(Text)
    api_key_hint: Mapped[str] = mapped_column(String(16))
    connected: Mapped[bool] = mapped_column(default=True)
    last_verified_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ITGlueWatch(Base):
    """The IT Glue watcher's state for one tenant (see qp_tenant/domain/watcher.py).

    ``cursor_at`` is the newest ``updated-at`` (IT Glue's clock) already looked at and
    ``cursor_ids`` the passwords seen exactly at it; ``key_fingerprint`` says which key and
    region the cursor belongs to (another one starts it afresh). ``lease_owner`` /
    ``lease_until`` let one process at a time watch the tenant. ``awaiting`` lists changes the
    watcher found before any webhook, checked again after the grace period.
    """

    __tablename__ = "itglue_watch"

    tenant_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True,
        autoincrement=False,
    )
    key_fingerprint: Mapped[str | None] = mapped_column(String(64))
    cursor_at: Mapped[datetime | None]
    cursor_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    last_checked_at: Mapped[datetime | None]
    next_check_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_found_at: Mapped[datetime | None]
    changes_found: Mapped[int] = mapped_column(default=0)
    awaiting: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    missing_alerted_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkflowToken(Base):
    """A workflow trigger token: found by HMAC, kept encrypted so its URL can be revealed."""

    __tablename__ = "workflow_tokens"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    token_hmac: Mapped[str] = mapped_column(String(64), unique=True)
    token_encrypted: Mapped[str] = mapped_column(Text)
    last4: Mapped[str] = mapped_column(String(4))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    grace_until: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )


class Event(Base):
    """The durable event log. ``id`` is monotonic; ``details`` never holds a secret."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_tenant_id_id", "tenant_id", "id"),
        Index("ix_events_dedup", "token_id", "body_hash"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    type: Mapped[str] = mapped_column(String(64), index=True)
    severity: Mapped[str] = mapped_column(String(8))
    summary: Mapped[str] = mapped_column(Text)
    resource_name: Mapped[str | None] = mapped_column(Text)
    resource_url: Mapped[str | None] = mapped_column(Text)
    account: Mapped[str | None] = mapped_column(Text)
    token_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    body_hash: Mapped[str | None] = mapped_column(String(64))
    duplicates: Mapped[int] = mapped_column(default=0)


class AlertSettings(Base):
    """Who receives a tenant's alert mail, and its expiry warning thresholds (days)."""

    __tablename__ = "alert_settings"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), unique=True
    )
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    # None: the process default (QP_EXPIRY_WARNING_DAYS).
    expiry_warning_days: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertCursor(Base):
    """The last event id whose failure was already considered for alert mail, per tenant."""

    __tablename__ = "alert_cursors"

    tenant_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True,
        autoincrement=False,
    )
    failures_after_id: Mapped[int] = mapped_column(BigIntId, default=0)


class TokenWarning(Base):
    """One expiry threshold handled for one token. The unique key makes it once, ever."""

    __tablename__ = "token_warnings"
    __table_args__ = (UniqueConstraint("token_id", "threshold",
                                       name="uq_token_warnings_token_threshold"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("workflow_tokens.id", ondelete="CASCADE"))
    threshold: Mapped[int] = mapped_column(Integer)  # days before expiry; -1 = expired
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertOutbox(Base):
    """An alert mail waiting to be sent (or sent, or given up): survives a restart."""

    __tablename__ = "alert_outbox"
    __table_args__ = (Index("ix_alert_outbox_status_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sent|failed
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


# ------------------------------------------------------------------------- reset pipeline
class Customer(Base):
    """An MSP customer, usually imported from (or linked to) an IT Glue organization."""

    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("tenant_id", "itglue_organization_id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    itglue_organization_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Agent(Base):
    """An enrolled agent. Its credential is a random token stored only as a SHA-256 hash."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    hostname: Mapped[str] = mapped_column(String(255), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="offline")
    last_seen_at: Mapped[datetime | None]
    directories: Mapped[list[dict[str, Any]]] = mapped_column(JSON(), default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # The customer whose directories this agent serves (None: not assigned yet).
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # A technician asked for a directory sync that the agent has not picked up yet.
    sync_requested_at: Mapped[datetime | None]


class AgentEnrollmentCode(Base):
    """A single-use, short-lived code an agent trades for its credential (stored hashed)."""

    __tablename__ = "agent_enrollment_codes"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), nullable=True
    )
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    # The customer the enrolled agent is assigned to.
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), nullable=True, index=True
    )


class Account(Base):
    """A source account (AD, LDAP, local) matched to an IT Glue password."""

    __tablename__ = "accounts"
    __table_args__ = (Index("ix_accounts_tenant_password", "tenant_id", "itglue_password_id"),
                      Index("ix_accounts_agent_directory", "agent_id", "directory"))

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(200))
    source_type: Mapped[str] = mapped_column(String(32))
    agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), nullable=True, index=True
    )
    directory: Mapped[str] = mapped_column(String(200), default="")
    identity: Mapped[str] = mapped_column(String(500))
    itglue_password_id: Mapped[str | None] = mapped_column(String(32))
    # The matched password's name in IT Glue, for people (never its value).
    itglue_password_name: Mapped[str | None] = mapped_column(String(255))
    last_reset_at: Mapped[datetime | None]
    last_reset_by: Mapped[str | None] = mapped_column(String(200))
    last_result: Mapped[str | None] = mapped_column(Text)
    # Keyed hash (Crypto.lookup_hash) of the value last applied: loop protection, never the value.
    last_applied_hash: Mapped[str | None] = mapped_column(String(64))
    # "present", or "gone" once a sync no longer finds it in its source.
    state: Mapped[str] = mapped_column(String(16), default="present", server_default="present")
    # Microsoft 365 (source type entra_id): the user's object id and whether it is synced
    # from an on-premises Active Directory (then only the agent can reset it).
    external_id: Mapped[str | None] = mapped_column(String(64))
    on_premises_sync: Mapped[bool | None]
    # Reported by an agent's directory sync (docs/agent.md): the names the account signs in
    # with (sAMAccountName, userPrincipalName, uid; automatch compares these), whether the
    # directory has it enabled, and the sync that last reported it and when.
    login_names: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    enabled: Mapped[bool | None]
    last_sync_id: Mapped[str | None] = mapped_column(String(64))
    last_reported_at: Mapped[datetime | None]
    # Fields a person set ("kind", "display_name"): a directory sync leaves them alone.
    manual_fields: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DirectorySync(Base):
    """Where an agent's sync of one of its directories stands (one row per agent+directory).

    ``reported``/``created``/``updated``/``events`` count the sync in progress (``sync_id``);
    the final page turns them into one summary event and starts afresh.
    """

    __tablename__ = "directory_syncs"
    __table_args__ = (UniqueConstraint("agent_id", "directory",
                                       name="uq_directory_syncs_agent_directory"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    directory: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    sync_id: Mapped[str | None] = mapped_column(String(64))
    reported: Mapped[int] = mapped_column(default=0, server_default="0")
    created: Mapped[int] = mapped_column(default=0, server_default="0")
    updated: Mapped[int] = mapped_column(default=0, server_default="0")
    events: Mapped[int] = mapped_column(default=0, server_default="0")
    started_at: Mapped[datetime | None]
    last_sync_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class ResetJob(Base):
    """One run of the reset pipeline for one accepted trigger, durable from the webhook's 202.

    States: ``pending`` (the tenant still has to resolve the account and read IT Glue),
    ``queued`` / ``leased`` (waiting for / held by the account's agent), then ``succeeded``,
    ``failed`` or ``skipped``. ``password_encrypted`` exists only while queued or leased.
    """

    __tablename__ = "reset_jobs"
    __table_args__ = (
        Index("ix_reset_jobs_state_next", "state", "next_attempt_at"),
        Index("ix_reset_jobs_agent_state", "agent_id", "state"),
        Index("ix_reset_jobs_trigger", "trigger_event_id"),
        Index("ix_reset_jobs_password_state", "itglue_password_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    trigger_event_id: Mapped[int | None] = mapped_column(BigIntId)
    replay: Mapped[bool] = mapped_column(default=False)
    # Why this check exists beyond its trigger: "repeat" (the trigger came again within the
    # duplicate window), "retry" (a person asked on the account), or None.
    origin: Mapped[str | None] = mapped_column(String(16))
    # Apply even when the value is the one last applied (a retry after a failed reset).
    force: Mapped[bool] = mapped_column(default=False, server_default=false())
    state: Mapped[str] = mapped_column(String(16), default="pending")
    itglue_password_id: Mapped[str] = mapped_column(String(32))
    itglue_organization_id: Mapped[str | None] = mapped_column(String(32))
    resource_name: Mapped[str | None] = mapped_column(Text)
    resource_url: Mapped[str | None] = mapped_column(Text)
    token_id: Mapped[int | None] = mapped_column(BigIntId)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True
    )
    agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), nullable=True
    )
    account_name: Mapped[str | None] = mapped_column(String(200))
    directory: Mapped[str | None] = mapped_column(String(200))
    identity: Mapped[str | None] = mapped_column(String(500))
    kind: Mapped[str | None] = mapped_column(String(32))
    password_encrypted: Mapped[str | None] = mapped_column(Text)
    password_hash: Mapped[str | None] = mapped_column(String(64))
    updated_by: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(default=0)
    itglue_attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    leased_at: Mapped[datetime | None]
    lease_expires_at: Mapped[datetime | None]
    queue_deadline: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class SignInThrottle(Base):
    """Failed sign-in counters and recognised addresses, shared by every process.

    Sign-in happens before a tenant is known, so these rows carry none; ``key`` is a hash of
    the kind, the email and (for ``pair`` and ``known``) the client address, so neither is
    stored in the clear. See qp_tenant/domain/throttle.py.
    """

    __tablename__ = "sign_in_throttle"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[datetime]
    blocked_until: Mapped[datetime | None]
    forget_at: Mapped[datetime] = mapped_column(index=True)


class Microsoft365Link(Base):
    """A customer's Microsoft 365 tenant and the app registration the tenant resets with."""

    __tablename__ = "m365_links"
    __table_args__ = (UniqueConstraint("customer_id", name="uq_m365_links_customer"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    directory_id: Mapped[str] = mapped_column(String(64))  # the Entra tenant id (or domain)
    client_id: Mapped[str] = mapped_column(String(64))
    client_secret_encrypted: Mapped[str] = mapped_column(Text)
    secret_hint: Mapped[str] = mapped_column(String(16))
    directory_roles: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    last_verified_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # Set when last_error first appeared; failures while it stays set alert no one again.
    error_since: Mapped[datetime | None]
    last_sync_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
