"""Governed installs: the bootstrap operator, a two-jurisdiction gallery, and SQL behind Facetrace's back
(all on ``gov_settings``: once on SQLite, once on PostgreSQL)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from facetrace.core.config import Settings
from facetrace.governance.service import Governance
from support.ingesting import ingest
from support.photos import encode


@pytest.fixture
def tamper(gov_settings: Settings) -> Iterator[Callable[..., None]]:
    """Run SQL on the database behind Facetrace's back, the append-only triggers bypassed.

    SQLite: straight on the database file with the sqlite3 module. PostgreSQL: as the superuser.
    """
    if gov_settings.database_url is None:

        def run_sqlite(*statements: str) -> None:
            connection = sqlite3.connect(gov_settings.data_dir / "facetrace.db")
            for statement in (
                "DROP TRIGGER IF EXISTS audit_entries_no_update",
                "DROP TRIGGER IF EXISTS audit_entries_no_delete",
                *statements,
            ):
                connection.execute(statement)
            connection.commit()
            connection.close()

        yield run_sqlite
        return
    engine = create_engine(gov_settings.database_url)

    def run_postgres(*statements: str) -> None:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
            for statement in statements:
                connection.exec_driver_sql(statement)  # as written: no bind parameters parsed

    yield run_postgres
    engine.dispose()


@pytest.fixture
def operator(gov_settings: Settings) -> Governance:
    """The bootstrap operator (every role) on a fresh install."""
    return Governance.open(gov_settings)


@pytest.fixture
def two_people(gov_settings: Settings, tmp_path: Path, astronaut_rgb: np.ndarray) -> dict[str, Path]:
    """The astronaut, and her mirror image (another template), in two folders and two jurisdictions."""
    photos = {"fr": tmp_path / "fr" / "astronaut.jpg", "us": tmp_path / "us" / "mirrored.jpg"}
    photos["fr"].parent.mkdir()
    photos["us"].parent.mkdir()
    photos["fr"].write_bytes(encode(astronaut_rgb, "JPEG", quality=95))
    photos["us"].write_bytes(encode(astronaut_rgb[:, ::-1].copy(), "JPEG", quality=95))
    ingest(gov_settings, [str(photos["fr"].parent)], source_name="press-fr", jurisdiction="FR")
    ingest(gov_settings, [str(photos["us"].parent)], source_name="press-us", jurisdiction="US")
    # The same French photo also seen in the US source: one image, two sightings.
    ingest(gov_settings, [str(photos["fr"])], source_name="press-us")
    return photos
