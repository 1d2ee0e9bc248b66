"""Shared fixtures: real images (scikit-image's public-domain samples, ../shared data when present), a
throwaway PostgreSQL cluster, the app served on a loopback port, and test websites to crawl."""

from __future__ import annotations

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
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from PIL import Image
from skimage import data as skimage_data
from sqlalchemy import create_engine, text

from facetrace.config import Settings
from facetrace.governance.service import Governance
from facetrace.server import create_app
from facetrace.vision.analyzer import FaceAnalyzer
from facetrace.vision.factory import build_analyzer

SHARED_FACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces"


@pytest.fixture(autouse=True)
def _no_environment_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build their own settings; FACETRACE_* variables of the shell must not leak in."""
    for name in list(os.environ):
        if name.startswith("FACETRACE_"):
            monkeypatch.delenv(name)


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

    def new_database(self) -> str:
        """Create an empty database; returns its SQLAlchemy URL."""
        name = f"facetrace_{next(self._numbers)}"
        admin = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.url(name)


def _as_server_user(command: list[str]) -> list[str]:
    """``command`` run as the OS user the server runs as: ourselves, or ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", SERVER_USER, "--", *command]
    return ["su", SERVER_USER, "-s", "/bin/sh", "-c", shlex.join(command)]


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL's initdb was not found on PATH or under /usr/lib/postgresql/*/bin")
    if os.geteuid() == 0:
        try:
            server_user = pwd.getpwnam(SERVER_USER)
        except KeyError:
            pytest.skip(f"running as root, and there is no {SERVER_USER!r} user to run PostgreSQL as")
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
def pg_url(cluster: Cluster) -> str:
    return cluster.new_database()


def images_in_catalog(database: Path) -> int:
    """Images in a SQLite catalog another process may be writing (0 before it exists)."""
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
            return connection.execute("SELECT count(*) FROM images").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0


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
def operator(gov_settings: Settings) -> Governance:
    """The bootstrap operator (every role) on a fresh install."""
    return Governance.open(gov_settings)


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
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
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
        """A fresh user with ``roles``, created by the admin over HTTP, and a client acting as them."""
        name = f"{'-'.join(roles)}-{next(self.names)}"
        admin = self.admin
        created = admin.post("/api/v1/users", json={"name": name, "roles": list(roles), "unit": unit})
        assert created.status_code == 201, created.text
        issued = admin.post(f"/api/v1/users/{name}/tokens", json={"name": "test", "days": 1})
        assert issued.status_code == 201, issued.text
        return name, self.client(issued.json()["token"])

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
