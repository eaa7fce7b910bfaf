"""Join three migrations that branch from the same schema into one head.

Agent customers (0005), the sign-in throttle (0007) and Microsoft 365 links (0008) each
branch from the alerts schema (0003); the next migration builds on this one.

Revision ID: 0009_merge
Revises: 0005_agentsec, 0007_authhard, 0008_m365
"""

from __future__ import annotations

revision = "0009_merge"
down_revision = ("0005_agentsec", "0007_authhard", "0008_m365")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
