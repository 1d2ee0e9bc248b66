"""The web app: server-rendered pages for every role, and the public rights portal.

Pages call the same governance service as the API and the CLI; they decide nothing themselves.
Templates are Jinja2, the few scripts plain JavaScript, and every asset is served from here
(no CDN). See :func:`install`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from facetrace.core.config import Settings
from facetrace.server.web.pages import (
    administration,
    api_reference,
    data_protection,
    investigation,
    oversight,
    portal,
    signing_in,
    supervision,
)
from facetrace.server.web.session import LoginRequiredError, session_secret

STATIC = Path(__file__).parent / "static"
#: Every module of pages (each has a ``router``).
PAGE_MODULES = (
    signing_in,
    investigation,
    supervision,
    data_protection,
    oversight,
    administration,
    portal,
    api_reference,
)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the pages, their static files and the signed session cookie to ``app``."""
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie="facetrace_session",
        max_age=settings.session_hours * 3600,
        same_site="strict",
        https_only=settings.secure_cookies,
    )
    app.state.portal_limiter = portal.limiter()
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def to_login(_request: Request, _exc: Exception) -> RedirectResponse:
        return RedirectResponse("/login", status_code=303)

    app.add_exception_handler(LoginRequiredError, to_login)
    for pages in PAGE_MODULES:
        app.include_router(pages.router)
