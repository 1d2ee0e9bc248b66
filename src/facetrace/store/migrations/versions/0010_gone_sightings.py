"""sightings can be gone from their source; sources remember when their crawl began

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sightings") as batch_op:
        batch_op.add_column(sa.Column("gone_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("sources") as batch_op:
        batch_op.add_column(sa.Column("crawl_started_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch_op:
        batch_op.drop_column("crawl_started_at")
    with op.batch_alter_table("sightings") as batch_op:
        batch_op.drop_column("gone_at")
