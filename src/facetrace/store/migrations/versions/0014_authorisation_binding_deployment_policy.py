"""authorisation binding deployment policy

Authorisations get the id of the unit that may use them and an expiry; the deployment's policy
gets a table of its own (seeded by the application from the environment, not here).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: Authorisations granted before expiries existed get this long from their decision.
EXISTING_VALID_DAYS = 30


def _unit_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def upgrade() -> None:
    connection = op.get_bind()
    # Columns added in place, never by copying the table: SQLite checks foreign keys, and dropping
    # the old copy of a table that case results refer to would fail (or lose them).
    if connection.dialect.name == "sqlite":
        op.execute("ALTER TABLE authorisations ADD COLUMN unit_id INTEGER REFERENCES units (id)")
    else:
        op.add_column("authorisations", sa.Column("unit_id", sa.BigInteger(), nullable=True))
        op.create_foreign_key(
            "fk_authorisations_unit_id_units", "authorisations", "units", ["unit_id"], ["id"]
        )
    op.add_column("authorisations", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_authorisations_unit_id", "authorisations", ["unit_id"])
    authorisations = sa.table(
        "authorisations",
        sa.column("id", sa.Integer),
        sa.column("unit", sa.String),
        sa.column("unit_id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("decided_at", sa.DateTime(timezone=True)),
        sa.column("expires_at", sa.DateTime(timezone=True)),
    )
    # Units typed twice with another case or spacing ("North", "north ") are one unit: the oldest.
    unit_ids: dict[str, int] = {}
    for unit_id, name in connection.execute(sa.text("SELECT id, name FROM units ORDER BY id")):
        unit_ids.setdefault(_unit_key(name), unit_id)
    named = sa.select(authorisations.c.id, authorisations.c.unit).where(authorisations.c.unit.is_not(None))
    for row in connection.execute(named).all():
        connection.execute(
            sa.update(authorisations)
            .where(authorisations.c.id == row.id)
            .values(unit_id=unit_ids.get(_unit_key(row.unit)))
        )
    granted = sa.select(authorisations.c.id, authorisations.c.decided_at).where(
        authorisations.c.status == "granted", authorisations.c.decided_at.is_not(None)
    )
    for row in connection.execute(granted).all():
        connection.execute(
            sa.update(authorisations)
            .where(authorisations.c.id == row.id)
            .values(expires_at=row.decided_at + timedelta(days=EXISTING_VALID_DAYS))
        )
    op.create_table(
        "deployment_settings",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("deployment_settings")
    op.drop_index("ix_authorisations_unit_id", "authorisations")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("authorisations") as batch:  # SQLite drops no column with a reference
            batch.drop_column("expires_at")
            batch.drop_column("unit_id")
    else:
        op.drop_constraint("fk_authorisations_unit_id_units", "authorisations", type_="foreignkey")
        op.drop_column("authorisations", "expires_at")
        op.drop_column("authorisations", "unit_id")
