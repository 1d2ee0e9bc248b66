"""One limit on the size of every request body, enforced while it streams in.

:class:`BodyLimitMiddleware` wraps the whole app (API and web pages). A body whose
``Content-Length`` is over its route's limit is refused with 413 before the app sees the request;
a body sent without a length (chunked) or longer than it said is counted as it is read and cut off
at the limit: the app's read fails with :class:`BodyTooLargeError`, answered 413 like any refusal.
Nothing is ever buffered here, and no reader of the app spools a body to disk
(:mod:`facetrace.server.common.uploads` reads forms in memory), so memory per request is bounded by the
limit of its route (:func:`body_limits`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facetrace.core.config import Settings
from facetrace.server.common.problems import problem_response
from facetrace.server.common.uploads import FORM_OVERHEAD_BYTES, SMALL_FORM_BYTES, BodyTooLargeError

#: Paths (any method) whose bodies carry an image within FACETRACE_MAX_IMAGE_BYTES.
IMAGE_UPLOAD_PATHS = ("/api/v1/search", "/api/v1/rights", "/search", "/search/faces")
#: The API's own url-encoded forms (read by :func:`facetrace.server.common.auth.password_form`).
API_FORM_PATHS = ("/api/v1/auth/token", "/api/v1/auth/password")
PORTAL_PATH = "/portal"
#: What a refused client may still send, read and dropped so that it can read the refusal.
LINGER_BYTES = 16 * 1024 * 1024
API_PREFIX = "/api/"


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """The largest body each path may send: listed paths their own, other API paths ``api``, the
    web pages' other forms ``forms``."""

    api: int
    forms: int
    paths: dict[str, int] = field(default_factory=dict)

    def for_path(self, path: str) -> int:
        if path in self.paths:
            return self.paths[path]
        return self.api if path.startswith(API_PREFIX) else self.forms


def body_limits(settings: Settings) -> BodyLimits:
    """The limits of ``settings``: image uploads FACETRACE_MAX_IMAGE_BYTES and room for the form's
    fields, the portal FACETRACE_PORTAL_MAX_UPLOAD_BYTES, logins and other forms
    :data:`SMALL_FORM_BYTES`, the API's JSON bodies FACETRACE_MAX_REQUEST_BYTES."""
    image = settings.max_image_bytes + FORM_OVERHEAD_BYTES
    paths = dict.fromkeys(IMAGE_UPLOAD_PATHS, image) | dict.fromkeys(API_FORM_PATHS, SMALL_FORM_BYTES)
    paths[PORTAL_PATH] = settings.portal_max_upload_bytes
    return BodyLimits(api=settings.max_request_bytes, forms=SMALL_FORM_BYTES, paths=paths)


class BodyLimitMiddleware:
    """Pure ASGI middleware: refuses or cuts off a body over its route's limit (see the module)."""

    def __init__(self, app: ASGIApp, *, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, _lingering(send, receive, lambda: True), limit)
            return
        body = _CountedBody(receive, limit)
        response_started = False

        async def watched_send(message: Message) -> None:
            nonlocal response_started
            response_started = True
            await send(message)

        lingering_send = _lingering(watched_send, receive, lambda: body.overflowed)
        try:
            await self.app(scope, body.receive, lingering_send)
        except BodyTooLargeError:
            if response_started:
                raise
            await _refuse(scope, receive, lingering_send, limit)


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = problem_response(Request(scope), 413, BodyTooLargeError(limit).detail)
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


def _lingering(send: Send, receive: Receive, refused: Callable[[], bool]) -> Send:
    """``send`` that, once a refused request's answer is written, reads and drops what the client
    still sends (at most :data:`LINGER_BYTES`) before ending the response: a client still sending
    would otherwise see its connection reset, the answer unread. (The server hands the app no more
    of the body once the response is complete, so the last, empty part of it waits.)"""

    async def send_then_drain(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body") and refused():
            await send({**message, "more_body": True})
            await _drain(receive, LINGER_BYTES)
            message = {"type": "http.response.body", "body": b"", "more_body": False}
        await send(message)

    return send_then_drain


@dataclass(slots=True)
class _CountedBody:
    """``receive`` that counts the body's bytes and fails once they pass ``limit``."""

    upstream: Receive
    limit: int
    received: int = 0
    overflowed: bool = False

    async def receive(self) -> Message:
        message = await self.upstream()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.overflowed = True
                raise BodyTooLargeError(self.limit)
        return message


def _content_length(scope: Scope) -> int | None:
    """The declared length; None when absent or unreadable (the server then frames the body)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _drain(receive: Receive, budget: int) -> None:
    """Read and drop what is left of a refused body, up to ``budget`` bytes; nothing is kept."""
    while budget >= 0:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        budget -= len(message.get("body", b""))
