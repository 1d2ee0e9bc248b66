"""The catalog database: migrations, SQLite settings, never-reused ids."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from facetrace.catalog.db import SCHEMA_HEAD, alembic_config, create_catalog_engine, migrate, schema_revision
from facetrace.catalog.models import Base, Image


def test_schema_head_constant_matches_the_newest_migration(tmp_path: Path) -> None:
    engine = create_catalog_engine(f"sqlite:///{tmp_path / 'c.db'}")
    assert ScriptDirectory.from_config(alembic_config(engine)).get_current_head() == SCHEMA_HEAD


def test_migrations_build_the_models_tables_and_run_once(tmp_path: Path) -> None:
    engine = create_catalog_engine(f"sqlite:///{tmp_path / 'c.db'}")
    assert schema_revision(engine) is None
    migrate(engine)
    assert schema_revision(engine) == SCHEMA_HEAD
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    migrate(engine)  # a no-op
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_downgrade_and_upgrade_round_trip(tmp_path: Path) -> None:
    engine = create_catalog_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    config = alembic_config(engine)
    command.downgrade(config, "base")
    assert not set(Base.metadata.tables) & set(inspect(engine).get_table_names())
    migrate(engine)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())


def test_image_and_face_ids_are_never_reused(tmp_path: Path) -> None:
    engine = create_catalog_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    with engine.begin() as connection:
        columns = {"size_bytes": 1, "width": 1, "height": 1, "format": "PNG", "face_count": 0}
        for sha in ("a", "b"):
            connection.execute(Image.__table__.insert().values(sha256=sha, **columns))
        connection.execute(text("DELETE FROM images WHERE sha256 = 'b'"))
        connection.execute(Image.__table__.insert().values(sha256="c", **columns))
        ids = connection.execute(text("SELECT sha256, id FROM images ORDER BY id")).all()
    assert ids == [("a", 1), ("c", 3)]
