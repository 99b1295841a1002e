"""Alembic environment: runs migrations on the async engine it is given (records/db.py)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from records.models import Base


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through records.db.migrate (or make migrate), which passes a connection")
run(connection)
