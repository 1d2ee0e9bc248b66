"""What every request shares: the application object (:class:`~facetrace.app.application.Facetrace`)
the server's lifespan opened, with the catalog, the analyzers, the portal's lane and the job runner."""

from __future__ import annotations

from typing import TypeAlias

from fastapi import Request

from facetrace.app.application import Facetrace

#: The server's state is the application object; handlers take the catalog, analyzers and jobs from it.
ServerState: TypeAlias = Facetrace


def server_state(request: Request) -> Facetrace:
    """FastAPI dependency: the application the app's lifespan opened."""
    facetrace: Facetrace = request.app.state.facetrace
    return facetrace
