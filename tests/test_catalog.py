"""The catalog database: migrations, SQLite settings, never-reused ids, training samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.orm import sessionmaker

from facetrace.catalog import repository
from facetrace.catalog.db import SCHEMA_HEAD, alembic_config, create_catalog_engine, migrate, schema_revision
from facetrace.catalog.models import Base, Face, Image

pytestmark = pytest.mark.sqlite_only("SQLite files of its own (test_postgres.py checks PostgreSQL)")


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


def test_a_training_sample_is_random_distinct_and_of_one_model(tmp_path: Path) -> None:
    """``sample_embeddings`` draws ids instead of listing them all (see its docstring): the draw must
    still be uniform over the model's faces, without repeats, and the same for the same gallery."""
    engine = create_catalog_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    columns = {"size_bytes": 1, "width": 1, "height": 1, "format": "PNG", "face_count": 0}
    face = {
        "box_x": 0,
        "box_y": 0,
        "box_w": 1,
        "box_h": 1,
        "landmarks": [0] * 10,
        "det_score": 1,
        "quality": 1,
    }
    with engine.begin() as connection:
        connection.execute(Image.__table__.insert().values(sha256="a", **columns))
        rows = [  # every third face is another model's; the embedding holds the face's number
            {
                **face,
                "image_id": 1,
                "model_id": "other" if n % 3 == 0 else "m",
                "embedding": np.float32([n, 0]).tobytes(),
            }
            for n in range(1, 3001)
        ]
        connection.execute(Face.__table__.insert(), rows)
        connection.execute(text("DELETE FROM faces WHERE id BETWEEN 1000 AND 1199"))
    sessions = sessionmaker(engine)
    with sessions() as session:
        sample = repository.sample_embeddings(session, "m", 500)
        again = repository.sample_embeddings(session, "m", 500)
        everything = repository.sample_embeddings(session, "m", 10_000)
    numbers = sample[:, 0].astype(int)
    assert sample.shape == (500, 2) and len(set(numbers)) == 500
    assert np.array_equal(sample, again)
    assert not any(n % 3 == 0 or 1000 <= n <= 1199 for n in numbers)  # held by model m only
    assert numbers.min() < 300 and numbers.max() > 2700  # spread over the whole id range
    assert len(everything) == sum(1 for n in range(1, 3001) if n % 3 and not 1000 <= n <= 1199)
