"""The app served on a loopback port for the API and browser tests, the clients that talk to it, and
the passwords its accounts get."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from facetrace.core.config import Settings
from facetrace.governance.service import Governance
from facetrace.server.app import create_app
from facetrace.server.serving import uvicorn_config
from facetrace.store.engine import open_catalog


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
#: The first admin's password in ``web_settings`` (the browser tests sign in with it).
WEB_PASSWORD = "a-long-test-password"


def staff_token(
    settings: Settings, admin: Governance, name: str, roles: list[str], unit: str | None = None
) -> str:
    """A new user with ``roles`` in ``unit`` (created first if missing), created by ``admin`` with a
    password, and the API token the user then made for themselves by logging in with it."""
    if unit is not None and unit.casefold() not in {known.casefold() for known in admin.accounts.units()}:
        admin.accounts.add_unit(unit)
    admin.accounts.add_user(name, roles, unit, USER_PASSWORD)
    person = Governance.with_password(settings, open_catalog(settings.catalog_url), name, USER_PASSWORD)
    return person.accounts.issue_token(name, "test", 1).token


PROBLEM = "application/problem+json"
#: What the API tests' searches give as their purpose.
PURPOSE = {
    "case_ref": "CASE-2026-7",
    "offence": "homicide",
    "justification": "the suspect seen at the station",
}


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
        admin_password=WEB_PASSWORD,
        import_dir=tmp_path / "imports",
    )


@pytest.fixture
def live_server(web_settings: Settings) -> Iterator[str]:
    """The whole app (API and web pages) on a free loopback port."""
    with running(create_app(web_settings)) as url:
        yield url
