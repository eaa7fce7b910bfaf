"""The IT Glue watcher's per-tenant state: cursor, lease and what it reports

Revision ID: 0012_watch
Revises: 0009_merge
"""

from alembic import op
import sqlalchemy as sa


revision = "0012_watch"
down_revision = "0009_merge"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "itglue_watch",
        sa.Column("tenant_id", BIG_ID, nullable=False),
        sa.Column("key_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("cursor_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cursor_ids", sa.JSON(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_found_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changes_found", sa.Integer(), nullable=False),
        sa.Column("awaiting", sa.JSON(), nullable=False),
        sa.Column("missing_alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id"),
    )


def downgrade() -> None:
    op.drop_table("itglue_watch")
