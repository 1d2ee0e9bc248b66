"""Errors on the web pages: an HTML page in the site's layout, where the API answers problem JSON.

Every page router is built with :class:`PageRoute`, so a page needs no ``try`` of its own: a
refusal of the governance layer, an expired form (CSRF), an invalid form or an unexpected
failure all become :func:`error_page`, with the same status the API would answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from facetrace.core.errors import FacetraceError
from facetrace.governance.service import Governance
from facetrace.server.common.problems import UNSTORABLE_VALUE, facetrace_status
from facetrace.server.common.state import server_state
from facetrace.server.web.rendering import page
from facetrace.server.web.session import LoginRequiredError, viewer

log = logging.getLogger(__name__)


def page_router() -> APIRouter:
    """A router for pages: left out of the API's OpenAPI, errors shown as pages."""
    return APIRouter(include_in_schema=False, route_class=PageRoute)


class PageRoute(APIRoute):
    """A route whose errors are shown as a page (a missing login still redirects to /login)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_as_page(request: Request) -> Response:
            try:
                return await handle(request)
            except LoginRequiredError:
                raise
            except FacetraceError as exc:
                status, _slug, title = facetrace_status(exc)
                return error_page(request, status, title, str(exc))
            except HTTPException as exc:
                return error_page(
                    request, exc.status_code, HTTPStatus(exc.status_code).phrase, str(exc.detail), exc.headers
                )
            except (RequestValidationError, ValidationError) as exc:
                return error_page(request, 422, "The form is incomplete", _invalid_fields(exc.errors()))
            except DataError:
                return error_page(request, 422, "The form is incomplete", UNSTORABLE_VALUE)
            except Exception:
                log.exception("unexpected error on %s %s", request.method, request.url.path)
                message = "an unexpected error; the server log has the details"
                return error_page(request, 500, "Something went wrong", message)

        return handle_as_page


def _invalid_fields(errors: Sequence[Any]) -> str:
    """Which fields are missing or invalid, and why (never the value sent: it may be a password)."""
    reasons = []
    for error in errors:
        name = ".".join(str(part) for part in error["loc"] if part != "body") or "the form"
        reasons.append(f"{name}: {error['msg'][0].lower()}{error['msg'][1:]}")
    return "invalid or missing: " + "; ".join(reasons) + ". Go back, check it and send the form again."


def error_page(
    request: Request, status: int, title: str, message: str, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    """The reason, in the service's own words, under the navigation of whoever is signed in."""
    context = {"title": title, "error": message, "status": status}
    response = page(request, "problem.html", _viewer(request), status_code=status, **context)
    response.headers.update(headers or {})
    return response


def _viewer(request: Request) -> Governance | None:
    """Who is signed in, for the navigation; nobody when that cannot be told (the error may be why)."""
    try:
        return viewer(request, server_state(request))
    except Exception:  # the very failure this page reports
        return None
