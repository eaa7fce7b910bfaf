"""Microsoft 365: customer links to their Entra tenant; account state and cloud identity

Revision ID: 0008_m365
Revises: 0003_alerts (depends on 0002_pipeline)
"""

from alembic import op
import sqlalchemy as sa


revision = "0008_m365"
down_revision = "0003_alerts"
branch_labels = None
# The accounts table comes from 0002_pipeline, on the other branch of the history.
depends_on = "0002_pipeline"

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "m365_links",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("tenant_id", BIG_ID, nullable=False),
        sa.Column("customer_id", BIG_ID, nullable=False),
        sa.Column("directory_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("client_secret_encrypted", sa.Text(), nullable=False),
        sa.Column("secret_hint", sa.String(length=16), nullable=False),
        sa.Column("directory_roles", sa.JSON(), nullable=True),
        sa.Column("last_verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("error_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", name="uq_m365_links_customer"),
    )
    op.create_index("ix_m365_links_tenant_id", "m365_links", ["tenant_id"])
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("state", sa.String(length=16), nullable=False,
                                   server_default="present"))
        batch.add_column(sa.Column("external_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("on_premises_sync", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("on_premises_sync")
        batch.drop_column("external_id")
        batch.drop_column("state")
    op.drop_index("ix_m365_links_tenant_id", table_name="m365_links")
    op.drop_table("m365_links")
