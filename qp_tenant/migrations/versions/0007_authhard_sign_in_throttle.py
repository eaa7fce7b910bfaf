"""sign-in throttle: failure counters per (email, address) and per email, in the database

Revision ID: 0007_authhard
Revises: 0003_alerts
"""

from alembic import op
import sqlalchemy as sa


revision = "0007_authhard"
down_revision = "0003_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_throttle",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("forget_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_sign_in_throttle_forget_at", "sign_in_throttle", ["forget_at"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_throttle_forget_at", table_name="sign_in_throttle")
    op.drop_table("sign_in_throttle")
