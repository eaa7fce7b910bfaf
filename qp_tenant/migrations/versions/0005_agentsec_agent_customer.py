"""agents serve one customer: agents.customer_id, and the enrollment code that carries it

Revision ID: 0005_agentsec
Revises: 0002_pipeline, 0003_alerts

Depends on both earlier heads: the agents table comes from 0002_pipeline. On SQLite the
column is added in place (ALTER TABLE … ADD COLUMN … REFERENCES): a batch copy of ``agents``
would drop the table under ``PRAGMA foreign_keys=ON`` and null every account's agent.
"""

from alembic import op
import sqlalchemy as sa


revision = "0005_agentsec"
down_revision = ("0002_pipeline", "0003_alerts")
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in ("agents", "agent_enrollment_codes"):
        if sqlite:
            op.execute(f"ALTER TABLE {table} ADD COLUMN customer_id INTEGER "
                       "REFERENCES customers (id) ON DELETE SET NULL")
        else:
            op.add_column(table, sa.Column("customer_id", BIG_ID, nullable=True))
            op.create_foreign_key(f"fk_{table}_customer_id", table, "customers",
                                  ["customer_id"], ["id"], ondelete="SET NULL")
        op.create_index(f"ix_{table}_customer_id", table, ["customer_id"])


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in ("agent_enrollment_codes", "agents"):
        op.drop_index(f"ix_{table}_customer_id", table)
        if sqlite:
            with op.batch_alter_table(table) as batch_op:
                batch_op.drop_column("customer_id")
        else:
            op.drop_constraint(f"fk_{table}_customer_id", table, type_="foreignkey")
            op.drop_column(table, "customer_id")
