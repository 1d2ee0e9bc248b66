"""Alembic environment: migrations run on the connection Facetrace hands over, or on the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from facetrace.store import catalog_models, governance_models
from facetrace.store.base import Base

config = context.config
TABLE_MODULES = (catalog_models, governance_models)  # importing them registers their tables on Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("alembic was run without a connection or a sqlalchemy.url to open one")
    with create_engine(url).connect() as own_connection:
        _run(own_connection)
