"""Connect to the catalog database and keep its schema at the newest migration."""

from __future__ import annotations

import contextlib
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from facetrace.core.private_files import FILE_MODE, FOLDER_MODE

if TYPE_CHECKING:
    from alembic.config import Config

#: The newest migration in ``migrations/versions`` (a test keeps the two in step). Knowing it
#: here lets every command check the schema with one query instead of importing Alembic.
SCHEMA_HEAD = "0019"


def create_catalog_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL mode, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        _create_private(Path(parsed.database))
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Deleted rows are overwritten, not just unlinked: an erasure leaves no template bytes behind.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    return engine


def _create_private(database: Path) -> None:
    """Create the SQLite file (an empty file is an empty database) owner-only, whatever the umask:
    SQLite gives its write-ahead log and shared-memory files the database file's permissions."""
    database.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("facetrace.store") / "migrations"))
    # The option goes through configparser interpolation: a literal '%' (URL-quoted passwords,
    # socket paths like ?host=%2Frun%2Fpostgresql) must be doubled or Alembic refuses the URL.
    url = engine.url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def schema_revision(engine: Engine) -> str | None:
    """The catalog's current migration, or None for an empty database."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it already is)."""
    if schema_revision(engine) == SCHEMA_HEAD:
        return
    from alembic import command

    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_catalog(url: str) -> sessionmaker[Session]:
    """Connect, migrate and return a session factory."""
    engine = create_catalog_engine(url)
    migrate(engine)
    return sessionmaker(engine, expire_on_commit=False)
