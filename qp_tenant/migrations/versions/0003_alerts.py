"""alerts: per-tenant alert settings, once-per-threshold token warnings, mail outbox

Revision ID: 0003_alerts
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa


revision = "0003_alerts"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alert_settings",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("tenant_id", BIG_ID, nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("expiry_warning_days", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id"),
    )
    op.create_table(
        "alert_cursors",
        sa.Column("tenant_id", BIG_ID, autoincrement=False, nullable=False),
        sa.Column("failures_after_id", BIG_ID, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    op.create_table(
        "token_warnings",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("tenant_id", BIG_ID, nullable=False),
        sa.Column("token_id", BIG_ID, nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["token_id"], ["workflow_tokens.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_id", "threshold", name="uq_token_warnings_token_threshold"),
    )
    op.create_index("ix_token_warnings_tenant_id", "token_warnings", ["tenant_id"])
    op.create_table(
        "alert_outbox",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("tenant_id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alert_outbox_tenant_id", "alert_outbox", ["tenant_id"])
    op.create_index("ix_alert_outbox_status_due", "alert_outbox", ["status", "next_attempt_at"])
    # Tenants that already exist start alerting on failures from now on, not on their history.
    op.execute(
        "INSERT INTO alert_cursors (tenant_id, failures_after_id) "
        "SELECT t.id, COALESCE((SELECT MAX(e.id) FROM events e WHERE e.tenant_id = t.id), 0) "
        "FROM tenants t"
    )


def downgrade() -> None:
    op.drop_index("ix_alert_outbox_status_due", table_name="alert_outbox")
    op.drop_index("ix_alert_outbox_tenant_id", table_name="alert_outbox")
    op.drop_table("alert_outbox")
    op.drop_index("ix_token_warnings_tenant_id", table_name="token_warnings")
    op.drop_table("token_warnings")
    op.drop_table("alert_cursors")
    op.drop_table("alert_settings")
