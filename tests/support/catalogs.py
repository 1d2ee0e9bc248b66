"""Where each test's catalog lives: its settings, a throwaway PostgreSQL cluster, and ``--catalog``.

``pytest --catalog postgres`` runs the suite with every test's default catalog on that cluster
instead of a SQLite file: see ``Catalogs`` below (the option itself is declared in conftest.py).
"""

from __future__ import annotations

import functools
import gc
import itertools
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.pool import NullPool

from facetrace.core.config import Settings
from facetrace.store.engine import open_catalog


@pytest.fixture(scope="session", autouse=True)
def _no_environment_settings() -> Iterator[None]:
    """Tests build their own settings; FACETRACE_* variables of the shell must not leak in (for the
    whole session, so that module-scoped fixtures see a clean environment too)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in list(os.environ):
            if name.startswith("FACETRACE_"):
                monkeypatch.delenv(name)
        yield


def on_postgres(config: pytest.Config) -> bool:
    """Whether this run is the PostgreSQL pass (``--catalog postgres``)."""
    return config.getoption("catalog") == "postgres"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", workers=1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def gov_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for a fresh install, once on SQLite and once on a throwaway PostgreSQL database."""
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    return Settings(data_dir=tmp_path / "var", database_url=url, workers=1)


# --- a throwaway PostgreSQL cluster (tests marked ``postgres``) -------------------------------------
#
# Started with the machine's ``initdb``/``pg_ctl`` (Debian keeps them in
# /usr/lib/postgresql/<version>/bin, off PATH). It listens on a Unix socket in a private
# temporary folder only, never on TCP, so it cannot clash with a server the machine may
# already run. PostgreSQL refuses to run as root: under root the cluster runs as the
# ``postgres`` user the Debian package creates. Every test gets a fresh database.

SERVER_USER = "postgres"  # who runs the server when the tests run as root
SUPERUSER = "postgres"  # the database role initdb creates (any OS user may log in as it: trust auth)


def _postgres_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: PATH first, then Debian's versioned folders."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: [int(part) if part.isdigit() else 0 for part in p.parent.parent.name.split(".")],
    )
    return debian[-1].parent if debian else None


class Cluster:
    """A running throwaway cluster reached through a socket folder; hands out fresh databases."""

    def __init__(self, socket_dir: Path) -> None:
        self.socket_dir = socket_dir
        self._numbers = itertools.count(1)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def _admin(self, statement: str) -> Any:
        """Run ``statement`` outside a transaction (CREATE/DROP DATABASE); its one value, if any."""
        admin = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with admin.connect() as connection:
            result = connection.execute(text(statement))
            return result.scalar() if result.returns_rows else None

    @functools.cached_property
    def _copy_files(self) -> str:
        """From PostgreSQL 15 on, CREATE DATABASE logs every page of its template unless told to copy
        the files (the only way before 15): a copy is several times faster for databases this small."""
        version = int(self._admin("SHOW server_version_num"))
        return " STRATEGY FILE_COPY" if version >= 150000 else ""

    def new_database(self, template: str | None = None) -> str:
        """Create a database, empty or a copy of the database at URL ``template``; returns its URL."""
        name = f"facetrace_{next(self._numbers)}"
        copy = f' TEMPLATE "{make_url(template).database}"' if template else ""
        self._admin(f'CREATE DATABASE "{name}"{copy}{self._copy_files}')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database, cutting off the connections the test's engines still pool (PostgreSQL 13+)."""
        self._admin(f'DROP DATABASE "{make_url(url).database}" WITH (FORCE)')


def _as_server_user(command: list[str]) -> list[str]:
    """``command`` run as the OS user the server runs as: ourselves, or ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", SERVER_USER, "--", *command]
    return ["su", SERVER_USER, "-s", "/bin/sh", "-c", shlex.join(command)]


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    # Without a way to start PostgreSQL its tests skip, but the PostgreSQL pass fails: it must not
    # pass by skipping everything.
    cannot = pytest.fail if on_postgres(request.config) else pytest.skip
    bin_dir = _postgres_bin()
    if bin_dir is None:
        cannot("PostgreSQL's initdb was not found on PATH or under /usr/lib/postgresql/*/bin")
    if os.geteuid() == 0:
        try:
            server_user = pwd.getpwnam(SERVER_USER)
        except KeyError:
            cannot(f"running as root, and there is no {SERVER_USER!r} user to run PostgreSQL as")
    # Not pytest's tmp_path: its parents are private to root, and the socket path must stay short.
    root = Path(tempfile.mkdtemp(prefix="facetrace-pg-"))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    sockets.mkdir()
    if os.geteuid() == 0:
        for path in (root, sockets):
            os.chown(path, server_user.pw_uid, server_user.pw_gid)

    def run(*command: str) -> None:
        done = subprocess.run(_as_server_user(list(command)), cwd=root, capture_output=True, text=True)
        if done.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            pytest.fail(f"{shlex.join(command)} failed:\n{done.stdout}{done.stderr}{server_log}")

    pg_ctl = str(bin_dir / "pg_ctl")
    try:
        run(
            str(bin_dir / "initdb"),
            *("-D", str(data), "-U", SUPERUSER, "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync"),
        )
        server_options = f"-k {sockets} -c listen_addresses=''"  # Unix socket only, no TCP
        # A throwaway cluster: nothing to keep over a power cut, so no fsyncs (the database each test
        # creates and drops is never flushed to disk).
        server_options += " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        run(pg_ctl, "-D", str(data), "-l", str(log), "-w", "-o", server_options, "start")
        yield Cluster(sockets)
    finally:
        gc.collect()  # close the pooled connections of engines the tests dropped, while the server runs
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]), cwd=root
            )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(cluster: Cluster) -> Iterator[str]:
    """An empty PostgreSQL database (no schema yet), whatever ``--catalog`` says; dropped afterwards."""
    url = cluster.new_database()
    yield url
    cluster.drop_database(url)


# --- the catalog every test gets by default (``--catalog``) ------------------------------------------
#
# ``pytest`` (``--catalog sqlite``) leaves the catalog setting alone: every install keeps its SQLite
# file under its data dir. ``pytest --catalog postgres`` gives each test a fresh database on the
# throwaway cluster through FACETRACE_DATABASE_URL, so every ``Settings`` the test builds without an
# explicit ``database_url`` (and every ``facetrace`` process it starts) uses PostgreSQL. Each database
# is a copy of one migrated once per session (CREATE DATABASE ... TEMPLATE copies a few files: faster
# than migrating), or empty for tests marked ``empty_catalog``; it is dropped after the test.
# Module-scoped installs ask ``catalogs.fresh()`` for theirs and pass it explicitly.
#
# In the PostgreSQL pass, tests that this setting cannot change are skipped (conftest.py's
# ``pytest_collection_modifyitems``): those marked ``no_catalog`` (they never open a catalog), those
# that pick their database themselves (``gov_settings`` runs each test on SQLite and on PostgreSQL,
# ``pg_url`` on PostgreSQL, in either pass), and those marked ``sqlite_only``.


class Catalogs:
    """Hands out the catalog URL a fresh install should use: None (its SQLite file) by default, a new
    PostgreSQL database under ``--catalog postgres``."""

    def __init__(self, cluster: Cluster | None = None, template: str | None = None) -> None:
        self.cluster = cluster
        self.template = template

    @contextmanager
    def fresh(self, *, empty: bool = False) -> Iterator[str | None]:
        """A new catalog's URL, migrated (or ``empty``) for PostgreSQL, dropped on exit; None for SQLite."""
        if self.cluster is None:
            yield None
            return
        url = self.cluster.new_database(None if empty else self.template)
        try:
            yield url
        finally:
            self.cluster.drop_database(url)


@pytest.fixture(scope="session")
def catalogs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalogs]:
    if not on_postgres(request.config):
        yield Catalogs()
        return
    cluster: Cluster = request.getfixturevalue("cluster")
    template = cluster.new_database()
    open_catalog(template).kw["bind"].dispose()  # migrated by the product's own code; no one connected
    yield Catalogs(cluster, template)
    # A SQLite catalog under the tests' folders means an install this pass did not move to PostgreSQL
    # (say, a module-scoped one built without ``catalogs.fresh()``). The demo gallery is SQLite by design.
    strays = [
        path for path in tmp_path_factory.getbasetemp().rglob("facetrace.db") if path.parent.name != "demo"
    ]
    if strays:
        pytest.fail(f"--catalog postgres, yet SQLite catalogs were made: {sorted(map(str, strays))}")


@pytest.fixture(autouse=True)
def _catalog_database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Under ``--catalog postgres``: FACETRACE_DATABASE_URL names a fresh database for this test."""
    if not on_postgres(request.config):
        yield
        return
    catalogs: Catalogs = request.getfixturevalue("catalogs")
    with catalogs.fresh(empty=request.node.get_closest_marker("empty_catalog") is not None) as url:
        assert url is not None
        monkeypatch.setenv("FACETRACE_DATABASE_URL", url)
        yield


# --- reading a catalog another process writes ------------------------------------------------------


def catalog_rows(settings: Settings, query: str) -> list[tuple]:
    """The rows of a read-only ``query`` on ``settings``' catalog, which another process may be
    writing: [] before the catalog or its tables exist. Opens nothing that would create it."""
    url = make_url(settings.catalog_url)
    if url.get_backend_name() == "sqlite":
        database = Path(url.database or "")
        if not database.exists():
            return []
        # read-only: this must not create the file, nor write behind the writer's back
        url = url.set(database=f"file:{database}", query={"mode": "ro", "uri": "true"})
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query))]
    except ProgrammingError:  # PostgreSQL: the tables are not created yet
        return []
    except OperationalError:
        if url.get_backend_name() == "sqlite":  # no such table yet, or busy this instant
            return []
        raise
    finally:
        engine.dispose()


def images_in_catalog(settings: Settings) -> int:
    """Images in ``settings``' catalog, which another process may be writing (0 before it exists)."""
    rows = catalog_rows(settings, "SELECT count(*) FROM images")
    return rows[0][0] if rows else 0
