"""sources as a registry: purpose, seeds, allowed hosts/paths, crawl limits, status

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch_op:
        batch_op.add_column(sa.Column("purpose", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("seeds", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("allowed", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("max_pages", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_depth", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("rate_per_s", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="active")
        )


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch_op:
        for column in ("status", "rate_per_s", "max_depth", "max_pages", "allowed", "seeds", "purpose"):
            batch_op.drop_column(column)
