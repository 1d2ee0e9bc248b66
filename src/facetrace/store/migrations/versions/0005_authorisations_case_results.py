"""authorisations and the results kept per case

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "authorisations",
        sa.Column("id", BigId, nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("case_ref", sa.String(length=200), nullable=False),
        sa.Column("unit", sa.String(length=200), nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("external_authority", sa.String(length=200), nullable=True),
        sa.Column("external_reference", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )
    op.create_index("ix_authorisations_case_ref", "authorisations", ["case_ref"])
    op.create_table(
        "case_results",
        sa.Column("id", BigId, nullable=False),
        sa.Column("audit_seq", BigId, nullable=False),
        sa.Column("user_name", sa.String(length=200), nullable=False),
        sa.Column("case_ref", sa.String(length=200), nullable=False),
        sa.Column("authorisation_id", BigId, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("results", sa.JSON(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["authorisation_id"], ["authorisations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("audit_seq", "user_name", "case_ref", "authorisation_id"):
        op.create_index(f"ix_case_results_{column}", "case_results", [column])


def downgrade() -> None:
    op.drop_table("case_results")
    op.drop_table("authorisations")
