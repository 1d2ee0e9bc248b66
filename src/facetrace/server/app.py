"""The FastAPI application: routers, error handling, metrics, and what it opens at start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import facetrace
from facetrace.app.application import Facetrace, FirstAdminHook
from facetrace.core.config import Settings
from facetrace.server import web
from facetrace.server.api import (
    accounts,
    audit,
    authorisations,
    erasure,
    health,
    jobs,
    policy,
    reports,
    rights,
    search,
    sources,
)
from facetrace.server.common import problems
from facetrace.server.common.body_limit import BodyLimitMiddleware, body_limits
from facetrace.server.common.metrics import Metrics, MetricsMiddleware
from facetrace.server.common.security_headers import SecurityHeadersMiddleware


def create_app(settings: Settings, *, on_first_admin: FirstAdminHook | None = None) -> FastAPI:
    """The API for the catalog at ``settings``; the catalog and models are opened when it starts.

    ``on_first_admin``: told the name (and a generated password) of the admin account created at
    start-up when none existed.
    """
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = Facetrace.open(settings, on_first_admin)
        app.state.facetrace = state
        metrics.watch_gallery(state.sessions)
        metrics.registry.register(state.portal_lane)
        try:
            yield
        finally:
            state.close()

    app = FastAPI(
        title="Facetrace",
        version=facetrace.__version__,
        description="Face search over registered sources, with provenance for every face. Every "
        "action is checked against the acting user's role and written to the hash-chained audit log.",
        lifespan=lifespan,
        # Swagger UI and ReDoc would load a CDN's scripts into this origin: the pages serve /docs instead.
        docs_url=None,
        redoc_url=None,
    )
    app.state.metrics = metrics
    app.add_middleware(BodyLimitMiddleware, limits=body_limits(settings))
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    problems.install(app)
    areas = (health, accounts, search, authorisations, policy, sources, jobs, audit, rights, erasure, reports)
    for area in areas:
        app.include_router(area.router)
    web.install(app, settings)
    # Added last: the outermost, so that every answer (the other middlewares' refusals too) has the headers.
    app.add_middleware(SecurityHeadersMiddleware, https_only=settings.secure_cookies)
    return app
