"""portal rights secrets: a request's code (as a digest), its report's deletion date, and do-not-collect
entries that wait for the request to be verified and executed

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rights_requests") as batch:
        batch.add_column(sa.Column("code_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("report_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("do_not_collect") as batch:
        batch.add_column(sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))
    # A template kept before now came with a request nobody may have verified: it waits, like a new
    # one, until its request is executed (URL and domain entries were only ever added at execution).
    op.execute(
        "UPDATE do_not_collect SET active = FALSE WHERE kind = 'template' AND request_id IN "
        "(SELECT id FROM rights_requests WHERE status <> 'done')"
    )


def downgrade() -> None:
    with op.batch_alter_table("do_not_collect") as batch:
        batch.drop_column("active")
    # In place: a copy of rights_requests on SQLite would cascade-delete every request's history.
    op.drop_column("rights_requests", "report_until")
    op.drop_column("rights_requests", "code_sha256")
