"""Errors as RFC 9457 problem details (``application/problem+json``).

Facetrace's own exceptions carry messages written for people; each class maps to one HTTP
status and one problem ``type`` (a URI reference, ``/problems/<slug>``, that clients may branch
on). HTTP-level errors (unknown route, validation, upload limits) use ``about:blank`` and the
status phrase as title, as the RFC recommends. Unexpected exceptions become a bare 500 whose
details go to the server log, not to the client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from facetrace.core.errors import (
    AuditWriteError,
    AuthenticationError,
    AuthorisationError,
    BusyError,
    ConflictError,
    FacetraceError,
    ImageError,
    InvalidValueError,
    LoginThrottledError,
    ModelIntegrityError,
    ModelMismatchError,
    NoFaceError,
    NotFoundError,
    PasswordChangeRequiredError,
    PermissionDeniedError,
    PurposeError,
    QuotaError,
    RetryLaterError,
)

MEDIA_TYPE = "application/problem+json"
#: Why a value the database refused (:class:`DataError`) is the client's error.
UNSTORABLE_VALUE = (
    "a value cannot be stored: text may not contain NUL characters, and numbers must be in range"
)
log = logging.getLogger(__name__)

#: Each Facetrace error class: (HTTP status, slug of its problem type, title). A subclass not
#: listed takes its nearest listed base class's entry (FacetraceError itself: 400).
FACETRACE_ERRORS: dict[type[FacetraceError], tuple[int, str, str]] = {
    PasswordChangeRequiredError: (403, "password-change-required", "The password must be changed first"),
    AuthenticationError: (401, "authentication", "No valid API token"),
    PermissionDeniedError: (403, "permission-denied", "The role does not allow this"),
    AuthorisationError: (403, "authorisation", "No valid authorisation for this search"),
    NotFoundError: (404, "not-found", "Not found"),
    ConflictError: (409, "conflict", "Not possible in the current state"),
    PurposeError: (422, "purpose-missing", "The search's purpose is incomplete"),
    InvalidValueError: (422, "invalid-value", "The value is not allowed"),
    ImageError: (400, "unusable-image", "The image cannot be used"),
    NoFaceError: (422, "no-face", "No usable face in the image"),
    QuotaError: (429, "quota-exceeded", "Search quota used up"),
    LoginThrottledError: (429, "login-throttled", "Too many failed logins"),
    BusyError: (503, "busy", "Too many requests of this kind at once"),
    AuditWriteError: (503, "audit-unavailable", "The audit log could not be written"),
    ModelIntegrityError: (500, "model-integrity", "The face models failed their checks"),
    ModelMismatchError: (500, "model-mismatch", "The index belongs to another model"),
    FacetraceError: (400, "refused", "Refused"),
}


class InvalidField(BaseModel):
    """Where a request is invalid and why (never the value sent: it may be a password)."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem details object, with the one extension member Facetrace sends: the
    invalid fields of an invalid request."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[InvalidField] | None = Field(
        default=None, description="Each invalid or missing field (only when the request is invalid)."
    )


def documented(*statuses: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """For a router's or route's ``responses=``: the problem bodies of ``statuses`` in OpenAPI."""
    return {
        status: {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": description}
        for status, description in statuses
    }


#: The errors any API route may answer.
PROBLEM_RESPONSES = documented(
    (400, "Refused or unusable input"),
    (401, "No valid API token"),
    (403, "The role, or the authorisation policy, does not allow this"),
    (404, "Not found"),
    (422, "Invalid or incomplete input"),
)
#: The further errors of a route that takes an image upload.
UPLOAD_RESPONSES = documented(
    (413, "The upload is larger than FACETRACE_MAX_IMAGE_BYTES"),
    (415, "Not a multipart form, or the file is not declared image/*"),
)


def problem_response(
    request: Request,
    status: int,
    detail: str | None,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    errors: list[InvalidField] | None = None,
) -> JSONResponse:
    body = Problem(
        type=type_,
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors,
    )
    return JSONResponse(
        jsonable_encoder(body, exclude_none=True), status_code=status, headers=headers, media_type=MEDIA_TYPE
    )


def facetrace_status(exc: FacetraceError) -> tuple[int, str, str]:
    """(status, slug, title) of ``exc``: its class's entry, or its nearest listed base class's."""
    return next(FACETRACE_ERRORS[cls] for cls in type(exc).__mro__ if cls in FACETRACE_ERRORS)


async def _facetrace_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FacetraceError)
    status, slug, title = facetrace_status(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, RetryLaterError):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return problem_response(
        request, status, str(exc), type_=f"/problems/{slug}", title=title, headers=headers
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return problem_response(request, exc.status_code, exc.detail, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Where and what, never the input itself (it may be a password).
    errors = [InvalidField(loc=list(e["loc"]), msg=e["msg"], type=e["type"]) for e in exc.errors()]
    fields = ", ".join(".".join(str(part) for part in e.loc[1:]) or str(e.loc[0]) for e in errors)
    return problem_response(request, 422, f"invalid or missing: {fields}", errors=errors)


async def _refused_by_the_database(request: Request, exc: Exception) -> JSONResponse:
    """A value the database cannot hold (PostgreSQL: a NUL in text, a number out of range) is the
    client's error, whichever field carried it: 422, and nothing was written (the transaction rolled
    back)."""
    assert isinstance(exc, DataError)
    log.info("value refused by the database on %s %s: %s", request.method, request.url.path, exc.orig)
    return problem_response(
        request,
        422,
        UNSTORABLE_VALUE,
        type_="/problems/invalid-value",
        title=FACETRACE_ERRORS[InvalidValueError][2],
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(request, 500, "an unexpected error; the server log has the details")


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` with problem details."""
    app.add_exception_handler(FacetraceError, _facetrace_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DataError, _refused_by_the_database)
    app.add_exception_handler(Exception, _unexpected_error)
