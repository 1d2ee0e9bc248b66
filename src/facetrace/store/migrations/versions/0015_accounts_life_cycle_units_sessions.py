"""accounts life cycle units sessions: units keyed by a canonical form, service accounts, forced
password changes, server-side web sessions and the login throttle; the bootstrap operator's
tokens die

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _unit_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _merge_units_differing_by_case(connection: sa.Connection) -> None:
    """Units that differ by case or spacing only were one unit typed twice: keep the oldest."""
    kept: dict[str, int] = {}
    for unit_id, name in connection.execute(sa.text("SELECT id, name FROM units ORDER BY id")):
        key = _unit_key(name)
        if key not in kept:
            kept[key] = unit_id
            connection.execute(
                sa.text("UPDATE units SET name_key = :key WHERE id = :id"), {"key": key, "id": unit_id}
            )
            continue
        connection.execute(
            sa.text("UPDATE users SET unit_id = :kept WHERE unit_id = :gone"),
            {"kept": kept[key], "gone": unit_id},
        )
        connection.execute(sa.text("DELETE FROM units WHERE id = :id"), {"id": unit_id})


def upgrade() -> None:
    # In place, never by copying the table: on SQLite a copy drops ``units``, which users and
    # authorisations refer to, and the catalog runs with foreign keys enforced.
    op.add_column("units", sa.Column("name_key", sa.String(200), nullable=True))
    _merge_units_differing_by_case(op.get_bind())
    if op.get_bind().dialect.name != "sqlite":  # SQLite cannot add NOT NULL in place; the model requires it
        op.alter_column("units", "name_key", existing_type=sa.String(200), nullable=False)
    op.create_index("uq_units_name_key", "units", ["name_key"], unique=True)

    # In place too: a copy of ``users`` on SQLite would cascade-delete every role and token.
    op.add_column("users", sa.Column("is_service", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column(
        "users", sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    # The bootstrap operator is a command-line identity only: whatever token it was ever given dies.
    op.execute(
        "UPDATE api_tokens SET revoked_at = CURRENT_TIMESTAMP WHERE revoked_at IS NULL "
        "AND user_id IN (SELECT id FROM users WHERE is_bootstrap)"
    )

    op.create_table(
        "web_sessions",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("session_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(320), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("login_throttle")
    op.drop_table("web_sessions")
    op.drop_column("users", "must_change_password")
    op.drop_column("users", "is_service")
    op.drop_index("uq_units_name_key", "units")
    op.drop_column("units", "name_key")
