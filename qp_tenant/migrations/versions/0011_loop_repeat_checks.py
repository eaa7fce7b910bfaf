"""Repeated triggers and account retries: where a check came from, a forced attempt, and the
matched IT Glue password's name on the account

Revision ID: 0011_loop
Revises: 0009_merge
"""

from alembic import op
import sqlalchemy as sa


revision = "0011_loop"
down_revision = "0009_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reset_jobs") as batch:
        batch.add_column(sa.Column("origin", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("force", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    # Coalescing looks up a password's waiting check for every accepted trigger.
    op.create_index("ix_reset_jobs_password_state", "reset_jobs",
                    ["itglue_password_id", "state"])
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("itglue_password_name", sa.String(length=255),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("itglue_password_name")
    op.drop_index("ix_reset_jobs_password_state", table_name="reset_jobs")
    with op.batch_alter_table("reset_jobs") as batch:
        batch.drop_column("force")
        batch.drop_column("origin")
