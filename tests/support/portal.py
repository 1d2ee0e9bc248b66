"""The public rights portal as a visitor uses it: a server with a gallery, and filing through the form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from facetrace.core.config import Settings
from support.api import ADMIN_PASSWORD, Api, serving_api


@contextmanager
def portal_server(settings: Settings, **changes: object) -> Iterator[Api]:
    changed = Settings(**{**settings.model_dump(), "admin_password": ADMIN_PASSWORD, **changes})
    with serving_api(changed) as api:
        yield api


def portal_visitor(api: Api) -> tuple[httpx.Client, str]:
    """An anonymous visitor who opened the portal: their client (with its session) and the form's action."""
    visitor = api.client()
    opened = visitor.get("/portal")
    assert opened.status_code == 200
    action = re.search(r'action="(/portal\?csrf=[^"]+)"', opened.text)
    assert action is not None
    return visitor, action.group(1)


def file_by_portal(
    visitor: httpx.Client, action: str, photo: bytes | None, kind: str = "access", **fields: str
) -> httpx.Response:
    files = {"photo": ("me.jpg", photo, "image/jpeg")} if photo is not None else None
    return visitor.post(action, data={"kind": kind, "contact": "me@example.org", **fields}, files=files)
