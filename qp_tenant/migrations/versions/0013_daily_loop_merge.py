"""Join the directory sync (0010), repeated-trigger checks (0011) and the IT Glue watcher
(0012), which were written side by side on 0009; the next migration builds on this one.

Revision ID: 0013_merge
Revises: 0010_sync, 0011_loop, 0012_watch
"""

from __future__ import annotations

revision = "0013_merge"
down_revision = ("0010_sync", "0011_loop", "0012_watch")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
