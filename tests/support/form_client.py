"""A web client that signs in through the login form, as a browser would (CSRF token included)."""

from __future__ import annotations

import base64
import json
import re

import httpx

from support.api import Api

COOKIE = "facetrace_session"


class Browser:
    """A web client that logs in through the login form, as a browser would (CSRF token included)."""

    def __init__(self, api: Api) -> None:
        self.client = httpx.Client(base_url=api.url, follow_redirects=True)
        api.clients.append(self.client)

    def csrf(self, path: str = "/login") -> str:
        match = re.search(r'name="csrf" value="([^"]+)"', self.client.get(path).text)
        assert match, path
        return match[1]

    def log_in(self, name: str, password: str) -> httpx.Response:
        form = {"csrf": self.csrf(), "username": name, "password": password}
        return self.client.post("/login", data=form)

    def cookie(self) -> dict:
        """What the signed session cookie carries (signed, not encrypted: anyone holding it can read it)."""
        payload = self.client.cookies[COOKIE].split(".")[0]
        return json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
