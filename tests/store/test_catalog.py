"""The catalog database: migrations, SQLite settings, never-reused ids, training samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.orm import sessionmaker

from facetrace.catalog import repository
from facetrace.collect.sources import within
from facetrace.store.base import Base
from facetrace.store.catalog_models import Face, Image
from facetrace.store.engine import (
    SCHEMA_HEAD,
    alembic_config,
    create_catalog_engine,
    migrate,
    schema_revision,
)

pytestmark = pytest.mark.sqlite_only("SQLite files of its own (test_postgres.py checks PostgreSQL)")


def catalog_at(tmp_path: Path, revision: str) -> Engine:
    """A new SQLite catalog migrated up to ``revision`` only, to be filled as it was then."""
    engine = create_catalog_engine(f"sqlite:///{tmp_path / 'c.db'}")
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return engine


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


#: Rows of a catalog at migration 0012 that later migrations must carry over, whatever they alter: each
#: table here is referenced by others, some with ON DELETE CASCADE, so a migration that copied one of
#: them on SQLite (foreign keys enforced) would fail, or silently delete the rows referring to it.
ROWS_AT_0012 = {
    "units": "INSERT INTO units (name, created_at) VALUES ('north', '2026-01-01')",
    "users": "INSERT INTO users (name, unit_id, is_bootstrap, disabled, created_at) "
    "VALUES ('ivy', 1, 0, 0, '2026-01-01')",
    "user_roles": "INSERT INTO user_roles (user_id, role) VALUES (1, 'investigator')",
    "api_tokens": "INSERT INTO api_tokens (user_id, name, token_sha256, created_at, expires_at) "
    "VALUES (1, 'cli', 'digest', '2026-01-01', '2036-01-01')",
    "authorisations": "INSERT INTO authorisations (reference, case_ref, unit, requested_by, requested_at, "
    "justification, status) VALUES ('AUTH-1', 'C-1', 'north', 'ivy', '2026-01-01', 'a missing child', "
    "'requested')",
    "case_results": "INSERT INTO case_results (audit_seq, user_name, case_ref, authorisation_id, created_at) "
    "VALUES (1, 'ivy', 'C-1', 1, '2026-01-01')",
    "rights_requests": "INSERT INTO rights_requests (reference, kind, status, received_at, due_at, urls, "
    "matched_face_ids) VALUES ('RR-1', 'access', 'received', '2026-01-01', '2026-02-01', '[]', '[]')",
    "rights_events": "INSERT INTO rights_events (request_id, at, actor, status) "
    "VALUES (1, '2026-01-01', 'dpo', 'received')",
    "do_not_collect": "INSERT INTO do_not_collect (request_id, kind, value, created_at) "
    "VALUES (1, 'url', 'https://example.org/', '2026-01-01')",
}


def test_upgrading_a_catalog_in_use_keeps_every_row(tmp_path: Path) -> None:
    """The upgrade runs as the catalog runs it (``migrate``: foreign keys enforced) over rows of every
    table that later migrations alter or that refers to one they alter."""
    engine = catalog_at(tmp_path, "0012")
    with engine.begin() as connection:
        for insert in ROWS_AT_0012.values():
            connection.execute(text(insert))
    migrate(engine)
    with engine.connect() as connection:
        counts = {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            for table in ROWS_AT_0012
        }
    assert counts == dict.fromkeys(ROWS_AT_0012, 1)


def test_an_objection_template_filed_before_0013_waits_for_its_request_to_be_executed(tmp_path: Path) -> None:
    """Templates kept before migration 0013 came with requests nobody may have verified: only those of
    executed requests stay in force."""
    engine = catalog_at(tmp_path, "0012")
    with engine.begin() as connection:
        for reference, status in (("RR-1", "received"), ("RR-2", "done")):
            connection.execute(
                text(
                    "INSERT INTO rights_requests (reference, kind, status, received_at, due_at, urls, "
                    "matched_face_ids) VALUES (:r, 'objection', :s, '2026-01-01', '2026-02-01', '[]', '[]')"
                ),
                {"r": reference, "s": status},
            )
        for request_id in (1, 2):
            connection.execute(
                text(
                    "INSERT INTO do_not_collect (request_id, kind, template, created_at) "
                    "VALUES (:i, 'template', :t, '2026-01-01')"
                ),
                {"i": request_id, "t": b"\x00" * 16},
            )
    migrate(engine)
    with engine.connect() as connection:
        active = connection.execute(text("SELECT request_id, active FROM do_not_collect ORDER BY request_id"))
        assert [(request, bool(flag)) for request, flag in active] == [(1, False), (2, True)]


def test_a_source_registered_before_0018_keeps_its_seeds_ports_and_no_private_network(tmp_path: Path) -> None:
    """Allowed entries compare ports since 0018: a bare HOST means the default ports, so a source whose
    seed names another port gets HOST:PORT beside HOST; and no source reaches a private network
    until an admin says so."""
    engine = catalog_at(tmp_path, "0017")
    with engine.begin() as connection:
        for name, seeds, allowed in (
            ("intranet", ["http://wiki.example:8080/staff/"], ["wiki.example/staff"]),
            ("news", ["https://news.example/"], ["news.example"]),
        ):
            connection.execute(
                text(
                    "INSERT INTO sources (name, kind, created_at, seeds, allowed, status) "
                    "VALUES (:n, 'website', '2026-01-01', :s, :a, 'active')"
                ),
                {"n": name, "s": json.dumps(seeds), "a": json.dumps(allowed)},
            )
    migrate(engine)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT name, allowed, allow_private_network FROM sources ORDER BY name")
        )
        stored = {name: (json.loads(allowed), bool(flag)) for name, allowed, flag in rows}
    assert stored == {
        "intranet": (["wiki.example/staff", "wiki.example:8080/staff"], False),
        "news": (["news.example"], False),
    }
    assert within("http://wiki.example:8080/staff/a", stored["intranet"][0])


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
