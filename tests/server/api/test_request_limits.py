"""Request bodies: one size limit for the whole app, enforced while reading, and nothing spooled to disk.

Attacks on a real server over HTTP: a body that declares a length over its route's limit is refused
before any of it is read; a body sent chunked, without a length, is cut off at the limit; a multipart
file sent to any route (a login, the token endpoint, a JSON route) is never written to a temporary
file, and the server stays up for the next client.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute

import facetrace.server.api
import facetrace.server.web.pages
from facetrace.core.config import Settings
from support.api import ADMIN_PASSWORD, PROBLEM, Api, assert_problem, serving_api

MAX_REQUEST_BYTES = 256 * 1024
#: What a login form may hold.
SMALL_FORM_BYTES = 64 * 1024
BOUNDARY = "limits-test-boundary"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    changed = Settings(
        **{**settings.model_dump(), "admin_password": ADMIN_PASSWORD, "max_request_bytes": MAX_REQUEST_BYTES}
    )
    with serving_api(changed) as api:
        yield api


def multipart_file(size: int, content_type: str = "image/jpeg") -> bytes:
    return (
        (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="photo"; filename="big.jpg"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + b"\xff\xd8\xff"
        + bytes(size)
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def chunked(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """``body`` as a generator: httpx then sends it chunked, with no Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def answer_to_headers_alone(url: str, path: str, headers: dict[str, str]) -> bytes:
    """What the server answers to a request's head, when not one byte of its body is sent."""
    host, port = url.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < _length(answer):
            chunk = connection.recv(65536)
            assert chunk, answer
            answer += chunk
    return answer


def _length(answer: bytes) -> int:
    found = re.search(rb"(?im)^content-length: *(\d+)", answer.partition(b"\r\n\r\n")[0])
    assert found, answer
    return int(found.group(1))


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v1/sources", "application/json"),
        ("/api/v1/auth/token", "application/x-www-form-urlencoded"),
        ("/api/v1/auth/token", f"multipart/form-data; boundary={BOUNDARY}"),
        ("/login", "application/x-www-form-urlencoded"),
        ("/api/v1/search", f"multipart/form-data; boundary={BOUNDARY}"),
        ("/portal", f"multipart/form-data; boundary={BOUNDARY}"),
    ],
)
def test_a_body_declared_over_its_limit_is_refused_before_it_is_sent(
    api: Api, path: str, content_type: str
) -> None:
    declared = {"Content-Type": content_type, "Content-Length": str(300 * 1024 * 1024)}
    head, _, body = answer_to_headers_alone(api.url, path, declared).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert f"content-type: {PROBLEM}".encode() in head.lower()
    assert b"larger than the limit" in body
    assert httpx.get(f"{api.url}/health").status_code == 200


def test_a_chunked_body_over_the_limit_is_cut_off_and_the_server_stays_up(api: Api) -> None:
    admin = api.admin
    json_body = b'{"name": "' + b"x" * (4 * MAX_REQUEST_BYTES) + b'"}'
    response = admin.post(
        "/api/v1/sources", content=chunked(json_body), headers={"Content-Type": "application/json"}
    )
    assert "larger than the limit of 262,144 bytes" in assert_problem(response, 413)["detail"]

    form = b"username=admin&password=" + b"p" * (2 * SMALL_FORM_BYTES)
    login = httpx.post(
        f"{api.url}/api/v1/auth/token",
        content=chunked(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(login, 413)

    assert admin.get("/health").status_code == 200
    assert api.log_in("admin", ADMIN_PASSWORD).status_code == 200


def test_a_login_takes_no_file(api: Api) -> None:
    small_file = multipart_file(1000)
    multipart = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    token = httpx.post(f"{api.url}/api/v1/auth/token", content=small_file, headers=multipart)
    assert_problem(token, 415)

    with httpx.Client(base_url=api.url) as browser:
        csrf = CSRF.search(browser.get("/login").text)
        assert csrf is not None
        form = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf.group(1)}\r\n'
        ).encode() + small_file
        login = browser.post("/login", content=form, headers=multipart)
    assert login.status_code == 415, login.text
    assert "takes no files" in login.text


def _posting_routes() -> list[str]:
    """Every path of the API and the web pages that takes a body, its parameters filled in."""
    paths = set()
    for package in (facetrace.server.api, facetrace.server.web.pages):
        for module in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
            router = getattr(importlib.import_module(module.name), "router", None)
            for route in getattr(router, "routes", []):
                if isinstance(route, APIRoute) and route.methods & {"POST", "PUT", "PATCH"}:
                    paths.add(re.sub(r"\{[^}]+\}", "1", route.path))
    return sorted(paths)


def test_no_route_spools_a_multipart_file_to_disk(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Temporary files are pointed at a folder that does not exist: any spooled file would fail the
    request with a 500; every route answers 2xx-4xx instead, and the folder never appears."""
    spool = tmp_path / "spool"
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    routes = _posting_routes()
    assert {"/api/v1/auth/token", "/login", "/password", "/api/v1/search", "/portal", "/admin/users"} <= set(
        routes
    )
    body = multipart_file(3 * 1024 * 1024)
    multipart = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    admin = api.admin
    with httpx.Client(base_url=api.url) as browser:
        csrf = CSRF.search(browser.get("/login").text)
        assert csrf is not None
        signed_in = browser.post(
            "/login", data={"csrf": csrf.group(1), "username": "admin", "password": ADMIN_PASSWORD}
        )
        assert signed_in.status_code in (200, 303), signed_in.text
        for path in routes:
            client = admin if path.startswith("/api/") else browser
            for content in (body, chunked(body)):
                response = client.post(f"{path}?csrf={csrf.group(1)}", content=content, headers=multipart)
                assert response.status_code < 500, (path, response.status_code, response.text[:300])
    assert not spool.exists()
    assert admin.get("/health").status_code == 200
