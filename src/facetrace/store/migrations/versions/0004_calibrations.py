"""calibrations: impostor score counts per model

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calibrations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("model_id", sa.String(length=100), nullable=False),
        sa.Column("dataset", sa.String(length=200), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("impostor_pairs", sa.BigInteger(), nullable=False),
        sa.Column("grid_start", sa.Float(), nullable=False),
        sa.Column("grid_step", sa.Float(), nullable=False),
        sa.Column("counts_at_least", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_calibrations_model_id", "calibrations", ["model_id"])


def downgrade() -> None:
    op.drop_index("ix_calibrations_model_id", table_name="calibrations")
    op.drop_table("calibrations")
