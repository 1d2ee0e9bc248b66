"""Security headers on every response: what a browser may load, run, frame and keep.

The pages load scripts, styles and images from this server only (``'self'``): no inline script,
no inline style, no CDN, and no other site may frame them (``frame-ancestors 'none'``, and
``X-Frame-Options`` for browsers that predate it). Nothing leaks the address of the page a link
was followed from (``Referrer-Policy: no-referrer``), no answer is sniffed into another type, and
no dynamic answer (every one is about a signed-in user or a session) is kept in a cache.

A route that must allow one thing more (the annual report keeps its inline stylesheet and its
plot as a ``data:`` image, so the file also reads well on its own) sets a policy built by
:func:`content_security_policy` with exactly those sources added; the middleware leaves such a
policy as it is.
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The pages' policy: a directive's sources; anything not named here falls back to 'none'.
POLICY: dict[str, tuple[str, ...]] = {
    "default-src": ("'none'",),
    "script-src": ("'self'",),
    "style-src": ("'self'",),
    "img-src": ("'self'", "blob:"),  # blob: the search page's preview of the chosen photo
    "connect-src": ("'self'",),
    "form-action": ("'self'",),
    "base-uri": ("'none'",),
    "frame-ancestors": ("'none'",),
}

#: Headers every response carries.
ALWAYS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}

#: Static files are the same for everyone and may be cached; any other answer may not.
STATIC_PREFIX = "/static/"
#: Behind TLS (FACETRACE_SECURE_COOKIES): browsers use HTTPS only, for a year from each answer.
HSTS = "max-age=31536000"


def content_security_policy(**more: tuple[str, ...]) -> str:
    """The header's value: :data:`POLICY` with ``more`` sources added to directives (``style_src=...``)."""
    directives = dict(POLICY)
    for name, sources in more.items():
        directive = name.replace("_", "-")
        directives[directive] = (*directives.get(directive, ()), *sources)
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def source_hash(text: str) -> str:
    """The CSP source that allows one inline ``<style>`` (or script) element whose content is ``text``."""
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return f"'sha256-{digest}'"


def standalone_document_policy(html: str) -> str:
    """The policy for a document written to be read on its own too (a report): the pages' policy,
    plus exactly its own ``<style>`` elements (by hash) and images carried inside it (``data:``)."""
    styles = re.findall(r"<style>(.*?)</style>", html, flags=re.DOTALL)
    return content_security_policy(
        style_src=tuple(source_hash(style) for style in styles), img_src=("data:",)
    )


class SecurityHeadersMiddleware:
    """Adds the headers to every HTTP response (pure ASGI: streamed bodies pass through untouched).
    A route's own Content-Security-Policy or Cache-Control (stricter or wider) is kept."""

    def __init__(self, app: ASGIApp, *, https_only: bool = False) -> None:
        self.app = app
        self.policy = content_security_policy()
        self.always = ALWAYS | ({"strict-transport-security": HSTS} if https_only else {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(STATIC_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.always.items():
                    headers[name] = value
                headers.setdefault("content-security-policy", self.policy)
                if not static:
                    headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
