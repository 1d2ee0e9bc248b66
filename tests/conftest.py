"""Shared fixtures: real images (scikit-image's public-domain samples, ../shared data when present), a
throwaway PostgreSQL cluster, the app served on a loopback port, and test websites to crawl.

``pytest --catalog postgres`` runs the suite with every test's default catalog on that cluster
instead of a SQLite file: see ``Catalogs`` below.
"""

from __future__ import annotations

import functools
import gc
import io
import itertools
import os
import pwd
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from PIL import Image
from skimage import data as skimage_data
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.pool import NullPool

from facetrace.core.config import Settings
from facetrace.governance.service import Governance
from facetrace.server.app import create_app
from facetrace.server.serving import uvicorn_config
from facetrace.store.engine import open_catalog
from facetrace.vision.analyzer import FaceAnalyzer
from facetrace.vision.factory import build_analyzer
from support.ingesting import ingest

#: Fixtures kept with the helpers they belong to, available to every test.
pytest_plugins = ["support.server_processes"]

SHARED_FACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces"


@pytest.fixture(scope="session", autouse=True)
def _no_environment_settings() -> Iterator[None]:
    """Tests build their own settings; FACETRACE_* variables of the shell must not leak in (for the
    whole session, so that module-scoped fixtures see a clean environment too)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in list(os.environ):
            if name.startswith("FACETRACE_"):
                monkeypatch.delenv(name)
        yield


@pytest.fixture
def shared_faces() -> Path:
    if not SHARED_FACES.is_dir():
        pytest.skip(f"needs the shared face data at {SHARED_FACES} (present in CI, absent in a fresh clone)")
    return SHARED_FACES


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
    cannot = pytest.fail if _on_postgres(request.config) else pytest.skip
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
# In the PostgreSQL pass, tests that this setting cannot change are skipped: those marked ``no_catalog``
# (they never open a catalog), those that pick their database themselves (``gov_settings`` runs each
# test on SQLite and on PostgreSQL, ``pg_url`` on PostgreSQL, in either pass), and those marked
# ``sqlite_only``.


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--catalog",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="where each test's default catalog lives: a SQLite file (default) or a fresh database on a "
        "throwaway PostgreSQL cluster",
    )


def _on_postgres(config: pytest.Config) -> bool:
    return config.getoption("catalog") == "postgres"


def pytest_report_header(config: pytest.Config) -> str:
    where = "fresh PostgreSQL databases (throwaway cluster)" if _on_postgres(config) else "SQLite files"
    return f"catalog: {where}"


NOT_IN_POSTGRES_PASS = {
    "no_catalog": "never opens a catalog: --catalog postgres cannot change it (the default pass runs it)",
    "picks_catalog": "picks its own catalog (gov_settings, pg_url): the default pass ran it just the same",
    "sqlite_only": "checks the SQLite catalog itself",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _on_postgres(config):
        return
    for item in items:
        sqlite_only = item.get_closest_marker("sqlite_only")
        if sqlite_only is not None:
            why = f": {sqlite_only.args[0]}" if sqlite_only.args else ""
            item.add_marker(pytest.mark.skip(reason=NOT_IN_POSTGRES_PASS["sqlite_only"] + why))
        elif item.get_closest_marker("no_catalog") is not None:
            item.add_marker(pytest.mark.skip(reason=NOT_IN_POSTGRES_PASS["no_catalog"]))
        elif {"gov_settings", "pg_url", "cluster"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.skip(reason=NOT_IN_POSTGRES_PASS["picks_catalog"]))


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
    if not _on_postgres(request.config):
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
    if not _on_postgres(request.config):
        yield
        return
    catalogs: Catalogs = request.getfixturevalue("catalogs")
    with catalogs.fresh(empty=request.node.get_closest_marker("empty_catalog") is not None) as url:
        assert url is not None
        monkeypatch.setenv("FACETRACE_DATABASE_URL", url)
        yield


def facetrace(
    data_dir: Path, *arguments: str, token: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``facetrace`` command as a user does: a new process, its output and exit code."""
    # conftest cleared the shell's FACETRACE_* (and names the catalog under --catalog postgres)
    environment = dict(os.environ)
    if token:
        environment["FACETRACE_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "facetrace", "--data-dir", str(data_dir), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=environment,
        input=stdin,
    )


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


def encode(rgb: np.ndarray, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    """Eileen Collins, NASA portrait (public domain), 512×512 RGB: one face."""
    return skimage_data.astronaut()


@pytest.fixture(scope="session")
def astronaut_jpeg(astronaut_rgb: np.ndarray) -> bytes:
    return encode(astronaut_rgb, "JPEG", quality=95)


@pytest.fixture(scope="session")
def coffee_png() -> bytes:
    """A cup of coffee: no face."""
    return encode(skimage_data.coffee(), "PNG")


@pytest.fixture
def photo_folder(tmp_path: Path, astronaut_jpeg: bytes, coffee_png: bytes) -> Path:
    """A folder of two photos to ingest: the astronaut (one face) and coffee (none)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "astronaut.jpg").write_bytes(astronaut_jpeg)
    (folder / "coffee.png").write_bytes(coffee_png)
    return folder


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", workers=1)


@pytest.fixture(scope="session")
def analyzer() -> Iterator[FaceAnalyzer]:
    """The packaged YuNet + SFace pipeline, loaded once per test session."""
    yield build_analyzer(Settings())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def gov_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for a fresh install, once on SQLite and once on a throwaway PostgreSQL database."""
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    return Settings(data_dir=tmp_path / "var", database_url=url, workers=1)


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


# --- the server, for the API and the browser tests -------------------------------------------------
# (and a website for the crawler to crawl)

#: What a test website answers: status, headers, body.
SiteResponse = tuple[int, dict[str, str], bytes]


@contextmanager
def serve(respond: Callable[[str, Message], SiteResponse]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 answering GETs with ``respond(path, headers)``; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers, body = respond(self.path, self.headers)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            with suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
                self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def running(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server did not start (see the log above)")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


#: The first admin's password in the API tests' settings.
ADMIN_PASSWORD = "correct horse battery staple"
#: The password the tests' other users get (it meets the password policy).
USER_PASSWORD = "a-test-user's-password"


def staff_token(
    settings: Settings, admin: Governance, name: str, roles: list[str], unit: str | None = None
) -> str:
    """A new user with ``roles`` in ``unit`` (created first if missing), created by ``admin`` with a
    password, and the API token the user then made for themselves by logging in with it."""
    if unit is not None and unit.casefold() not in {known.casefold() for known in admin.units()}:
        admin.add_unit(unit)
    admin.add_user(name, roles, unit, USER_PASSWORD)
    person = Governance.with_password(settings, open_catalog(settings.catalog_url), name, USER_PASSWORD)
    return person.issue_token(name, "test", 1).token


PROBLEM = "application/problem+json"


@dataclass
class Api:
    """A running API and the clients the test made for it (closed when the server stops)."""

    url: str
    settings: Settings
    first_admins: list[tuple[str, str | None]]
    clients: list[httpx.Client] = field(default_factory=list)
    names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=self.url, headers=headers)
        self.clients.append(client)
        return client

    def log_in(self, name: str, password: str) -> httpx.Response:
        return httpx.post(f"{self.url}/api/v1/auth/token", data={"username": name, "password": password})

    @property
    def admin(self) -> httpx.Client:
        return self.client(self.log_in("admin", ADMIN_PASSWORD).json()["access_token"])

    def new_user(self, *roles: str, unit: str | None = "north") -> tuple[str, httpx.Client]:
        """A fresh user with ``roles`` (in ``unit``, created first if missing), created by the admin over
        HTTP with a password, and a client acting with the token the user got by logging in."""
        name = f"{'-'.join(roles)}-{next(self.names)}"
        admin = self.admin
        known = {existing.casefold() for existing in admin.get("/api/v1/units").json()}
        if unit is not None and unit.casefold() not in known:
            added = admin.post("/api/v1/units", json={"name": unit})
            assert added.status_code == 201, added.text
        person = {"name": name, "roles": list(roles), "unit": unit, "password": USER_PASSWORD}
        created = admin.post("/api/v1/users", json=person)
        assert created.status_code == 201, created.text
        logged_in = self.log_in(name, USER_PASSWORD)
        assert logged_in.status_code == 200, logged_in.text
        return name, self.client(logged_in.json()["access_token"])

    def as_role(self, *roles: str, unit: str | None = "north") -> httpx.Client:
        return self.new_user(*roles, unit=unit)[1]


@contextmanager
def serving_api(settings: Settings) -> Iterator[Api]:
    """The app for ``settings`` (give it ``admin_password=ADMIN_PASSWORD``) served on a free port."""
    first_admins: list[tuple[str, str | None]] = []
    app = create_app(settings, on_first_admin=lambda name, password: first_admins.append((name, password)))
    with running(app) as url:
        api = Api(url, settings, first_admins)
        try:
            yield api
        finally:
            for client in api.clients:
                client.close()


def assert_problem(response: httpx.Response, status: int, type_: str = "about:blank") -> dict:
    """The response is an RFC 9457 problem of ``status`` and ``type_``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["type"] == type_
    assert body["title"]
    assert body["detail"]
    assert body["instance"] == response.request.url.path
    return body


@pytest.fixture
def web_settings(tmp_path: Path) -> Settings:
    """A fresh catalog whose first admin ('admin') gets the browser tests' password, and an
    (empty) import folder."""
    (tmp_path / "imports").mkdir()
    return Settings(
        data_dir=tmp_path / "var",
        workers=1,
        admin_password="a-long-test-password",
        import_dir=tmp_path / "imports",
    )


@pytest.fixture
def live_server(web_settings: Settings) -> Iterator[str]:
    """The whole app (API and web pages) on a free loopback port."""
    with running(create_app(web_settings)) as url:
        yield url
