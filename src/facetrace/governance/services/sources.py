"""The source registry: register, list, pause, resume and remove sources (admin), each audited."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from facetrace.catalog.models import Source
from facetrace.collect import sources
from facetrace.collect.sources import SourceSpec
from facetrace.governance import audit
from facetrace.governance.audit import Record
from facetrace.governance.roles import Action
from facetrace.governance.services.base import ServiceBase


class SourceService(ServiceBase):
    def add_source(self, spec: SourceSpec) -> dict[str, Any]:
        self.allow(Action.MANAGE_SOURCES)
        with self.sessions.begin() as session:
            source = sources.register(session, spec)
            described = sources.describe(session, source)
            audit.append(session, self.actor, Record(action="sources.add", details=described))
        return described

    def sources(self) -> list[dict[str, Any]]:
        self.allow(Action.VIEW_STATS)
        with self.sessions() as session:
            return [
                sources.describe(session, s) for s in session.scalars(select(Source).order_by(Source.name))
            ]

    def source(self, name: str) -> dict[str, Any]:
        self.allow(Action.VIEW_STATS)
        with self.sessions() as session:
            return sources.describe(session, sources.named(session, name))

    def pause_source(self, name: str, *, paused: bool = True) -> None:
        """Pause a source (nothing is collected from it until resumed), or resume it."""
        self.allow(Action.MANAGE_SOURCES)
        with self.sessions.begin() as session:
            sources.named(session, name).status = "paused" if paused else "active"
            action = "sources.pause" if paused else "sources.resume"
            audit.append(session, self.actor, Record(action=action, details={"source": name}))

    def remove_source(self, name: str) -> None:
        self.allow(Action.MANAGE_SOURCES)
        with self.sessions.begin() as session:
            sources.remove(session, sources.named(session, name))
            audit.append(session, self.actor, Record(action="sources.remove", details={"source": name}))
