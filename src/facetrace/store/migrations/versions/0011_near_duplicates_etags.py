"""images carry a perceptual hash and a near-duplicate link; sightings keep the ETag for recrawls

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch_op:
        batch_op.add_column(sa.Column("phash", sa.String(16), nullable=True))
        batch_op.add_column(sa.Column("near_duplicate_of", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_images_near_duplicate_of", ["near_duplicate_of"])
    with op.batch_alter_table("sightings") as batch_op:
        batch_op.add_column(sa.Column("http_etag", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sightings") as batch_op:
        batch_op.drop_column("http_etag")
    with op.batch_alter_table("images") as batch_op:
        batch_op.drop_index("ix_images_near_duplicate_of")
        batch_op.drop_column("near_duplicate_of")
        batch_op.drop_column("phash")
