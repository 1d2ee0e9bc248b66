"""Pages rendered from Jinja2 templates, with what every page needs: who is signed in, what they
may open (read from the role table, never decided here), the CSRF token and pending messages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from facetrace.core.errors import FacetraceError
from facetrace.governance.roles import Action, may
from facetrace.governance.service import Governance
from facetrace.ingest.inputs import WEB_SCHEMES
from facetrace.server.web.session import csrf_token, flash, take_flashes

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _from_json(text: str | None) -> dict[str, Any]:
    """A request's outcome, stored as JSON when it was executed (a refusal's is plain words)."""
    try:
        value = json.loads(text or "")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


TEMPLATES.env.filters["fromjson"] = _from_json


def _is_web_url(value: object) -> bool:
    """Whether a stored URL may be rendered as a link: only http(s), never ``javascript:`` and the
    like, whatever reached the catalog (``{% if url is web_url %}<a href=...>``)."""
    return isinstance(value, str) and urlsplit(value.strip()).scheme.lower() in WEB_SCHEMES


TEMPLATES.env.tests["web_url"] = _is_web_url

#: The navigation: (path, label, the action that makes the page useful).
PAGES = (
    ("/search", "Search", Action.SEARCH),
    ("/cases", "My cases", Action.SEARCH),
    ("/supervisor", "Supervisor", Action.DECIDE_AUTHORISATION),
    ("/dpo", "Data protection", Action.HANDLE_RIGHTS),
    ("/audit", "Audit log", Action.READ_AUDIT),
    ("/admin", "Administration", Action.MANAGE_USERS),
)


def pages_for(gov: Governance) -> list[tuple[str, str]]:
    return [(path, label) for path, label, action in PAGES if may(gov.actor.roles, action)]


def page(
    request: Request, template: str, gov: Governance | None = None, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "me": gov.actor if gov else None,
            "nav": pages_for(gov) if gov else [],
            "csrf": csrf_token(request),
            "flashes": take_flashes(request),
            **context,
        },
        status_code=status_code,
    )


def back_to(path: str) -> RedirectResponse:
    """After a form: see the page again (a reload does not post the form twice)."""
    return RedirectResponse(path, status_code=303)


@contextmanager
def reported(request: Request, done: str | None = None) -> Iterator[None]:
    """Run a service call; its refusal (permission, validation, not found…) becomes a message."""
    try:
        yield
    except FacetraceError as exc:
        flash(request, str(exc), "error")
    else:
        if done:
            flash(request, done)
