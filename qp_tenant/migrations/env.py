"""Alembic environment: runs on a connection handed in by ``qp_tenant.db.migrate``."""

from __future__ import annotations

from alembic import context

from qp_tenant.models import Base

target_metadata = Base.metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations through `qp-tenant migrate`, which supplies a connection.")

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
