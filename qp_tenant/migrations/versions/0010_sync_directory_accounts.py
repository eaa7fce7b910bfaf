"""Accounts reported by agents: login names, enabled flag, fields set by hand, sync bookkeeping

Revision ID: 0010_sync
Revises: 0009_merge
"""

from alembic import op
import sqlalchemy as sa


revision = "0010_sync"
down_revision = "0009_merge"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("login_names", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("enabled", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("manual_fields", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("last_sync_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("last_reported_at", sa.DateTime(timezone=True),
                                   nullable=True))
    op.create_index("ix_accounts_agent_directory", "accounts", ["agent_id", "directory"])
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("sync_requested_at", sa.DateTime(timezone=True),
                                   nullable=True))
    op.create_table(
        "directory_syncs",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("tenant_id", BIG_ID, nullable=False),
        sa.Column("agent_id", BIG_ID, nullable=False),
        sa.Column("directory", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("sync_id", sa.String(length=64), nullable=True),
        sa.Column("reported", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("events", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_id", "directory", name="uq_directory_syncs_agent_directory"),
    )
    op.create_index("ix_directory_syncs_tenant_id", "directory_syncs", ["tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_directory_syncs_tenant_id", table_name="directory_syncs")
    op.drop_table("directory_syncs")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("sync_requested_at")
    op.drop_index("ix_accounts_agent_directory", table_name="accounts")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("last_reported_at")
        batch.drop_column("last_sync_id")
        batch.drop_column("manual_fields")
        batch.drop_column("enabled")
        batch.drop_column("login_names")
