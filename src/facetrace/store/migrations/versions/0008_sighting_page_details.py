"""sightings keep the page title, the image's alt text and the HTTP Last-Modified

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sightings") as batch_op:
        batch_op.add_column(sa.Column("page_title", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("alt_text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("http_last_modified", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sightings") as batch_op:
        for column in ("http_last_modified", "alt_text", "page_title"):
            batch_op.drop_column(column)
