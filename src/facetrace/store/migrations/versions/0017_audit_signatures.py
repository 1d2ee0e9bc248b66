"""audit signatures

Revision ID: 0017
Revises: 0016

Each audit entry gets an Ed25519 signature and the id of the key that made it; the head row
records which key signs next; ``audit_keys`` keeps the public keys. A migration holds no key,
so it signs nothing: entries written before it stay unsigned until the first start that has
the key, which appends one signed "audit.sealed" entry over their head (see governance/audit_keys.py).

On SQLite, adding columns is a plain ALTER TABLE (batch mode does not copy the table), so the
append-only triggers of audit_entries stay in place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("signature", sa.String(length=100), nullable=True))
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=64), nullable=True))
    op.create_table(
        "audit_keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("first_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("last_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.PrimaryKeyConstraint("key_id"),
    )


def downgrade() -> None:
    op.drop_table("audit_keys")
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("key_id")
    if op.get_bind().dialect.name == "sqlite":
        # Dropping a column copies the table, and the copy would lose the append-only triggers.
        for event in ("UPDATE", "DELETE"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_entries_no_{event.lower()}")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_column("signature")
        batch_op.drop_column("key_id")
    if op.get_bind().dialect.name == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_entries_no_{event.lower()} BEFORE {event} ON audit_entries "
                "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
            )
