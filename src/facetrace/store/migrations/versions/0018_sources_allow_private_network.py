"""sources allow private network

Revision ID: 0018
Revises: 0017

A source may reach loopback, private and link-local addresses only when an admin registered it
so (``allow_private_network``, false for every source registered before).

Allowed entries now compare the port too: a bare ``HOST`` means the default ports (80, 443).
Before, it meant any port, so a source whose seeds name another port (``http://HOST:8080/``)
gets ``HOST:8080`` (with the entry's path) beside each ``HOST`` entry, and crawls as it did.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _with_seed_ports(seeds: list[str], allowed: list[str]) -> list[str]:
    """``allowed`` plus ``HOST:PORT[/PATH]`` for each bare-host entry a seed reaches on another port."""
    added = list(allowed)
    for seed in seeds:
        try:
            parts = urlsplit(seed)
            host, port = (parts.hostname or "").lower(), parts.port
        except ValueError:
            continue
        if not host or port is None or port == _DEFAULT_PORTS.get(parts.scheme.lower()):
            continue
        named = f"[{host}]" if ":" in host else host
        for entry in allowed:
            entry_host, slash, path = entry.partition("/")
            if "://" not in entry and entry_host.lower() in (host, named):
                widened = f"{named}:{port}{slash}{path}"
                if widened not in added:
                    added.append(widened)
    return added


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None, recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("allow_private_network", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    sources = sa.table(
        "sources", sa.column("id", sa.Integer), sa.column("seeds", sa.JSON), sa.column("allowed", sa.JSON)
    )
    bind = op.get_bind()
    for row in bind.execute(sa.select(sources.c.id, sources.c.seeds, sources.c.allowed)).all():
        widened = _with_seed_ports(row.seeds or [], row.allowed or [])
        if widened != (row.allowed or []):
            bind.execute(sources.update().where(sources.c.id == row.id).values(allowed=widened))


def downgrade() -> None:
    # A plain ALTER TABLE ... DROP COLUMN: copying the table would cascade to its sightings.
    with op.batch_alter_table("sources", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("allow_private_network")
