"""erasure keyed hashes: no schema change

Erasure certificates and their audit entries now name what was erased by keyed hash (HMAC-SHA256
with the deployment's erasure key, kept outside the catalog in ``<data_dir>/erasure.key`` or
``FACETRACE_ERASURE_HMAC_KEY_FILE``), and an erasure by face id also deletes the sightings of
images it leaves with no face. Both live in the certificate files, the audit entries' details and
the erasure code: no table or column changes. Nothing is deleted here either: a migration appends
no audit entry, and every deletion needs one (and a certificate).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change in the schema (see the module's docstring)."""


def downgrade() -> None:
    """Nothing to undo."""
