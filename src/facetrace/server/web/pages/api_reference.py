"""The API's reference at /docs, rendered here from the app's own OpenAPI schema.

FastAPI's Swagger UI would load its scripts from a CDN and run inline ones on this origin, where
the session cookies live; a server that reaches no other site could not even load them. This page
lists every operation (method, path, what it does, who may call it, as the schema says) in the
site's layout, and links the schema itself (/openapi.json) for tools.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from facetrace.server.web.errors import page_router
from facetrace.server.web.rendering import page

router = page_router()


def operations(schema: dict[str, Any]) -> list[dict[str, str]]:
    """One row per operation, in the schema's order."""
    return [
        {
            "method": method.upper(),
            "path": path,
            "summary": operation.get("summary", ""),
            "description": operation.get("description", ""),
        }
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]


@router.get("/docs", response_class=HTMLResponse)
def api_reference(request: Request) -> HTMLResponse:
    schema = request.app.openapi()
    return page(request, "api_docs.html", info=schema["info"], operations=operations(schema))
