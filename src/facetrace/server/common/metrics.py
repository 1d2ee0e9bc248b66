"""Prometheus metrics: requests (count and latency per route) and what the gallery holds.

Each app has its own registry, so two apps in one process (tests) do not share counters.
Routes are labelled by their template (``/api/v1/sources/{name}``), never by the raw path, so
the number of series stays bounded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facetrace.catalog import repository


class GalleryCollector(Collector):
    """Counts the catalog's sources, images, sightings and faces at each scrape."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("facetrace_gallery", "What the catalog holds, by kind.", labels=["kind"])
        with self.sessions() as session:
            for kind, count in repository.totals(session).items():
                family.add_metric([kind], count)
        yield family


class Metrics:
    """The app's registry and the request metrics it records."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "facetrace_http_requests",
            "HTTP requests answered, by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "facetrace_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route.",
            ["method", "route"],
            registry=self.registry,
        )

    def watch_gallery(self, sessions: sessionmaker[Session]) -> None:
        self.registry.register(GalleryCollector(sessions))

    def response(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Counts and times every HTTP request (plain ASGI: it leaves the body stream alone)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped every handler

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # The router puts the matched route into this same scope.
            template = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)
            self.metrics.requests.labels(method, template, str(status)).inc()
