"""What the server opens once and every request shares: the catalog engine, the face models and the
background job runner."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from facetrace.core.config import Settings
from facetrace.governance import audit_keys
from facetrace.governance.services.accounts import ensure_first_admin
from facetrace.governance.services.configuring import seed_at_start
from facetrace.server.common.analysis_lanes import AnalysisLane
from facetrace.server.common.jobs import JobRunner
from facetrace.store.engine import open_catalog
from facetrace.vision.analyzer import FaceAnalyzer
from facetrace.vision.factory import build_analyzer

#: Told the first admin's name and, when it was generated, its password (to print it once).
FirstAdminHook = Callable[[str, str | None], None]


@dataclass(slots=True)
class ServerState:
    settings: Settings
    #: One engine (and connection pool) for the process: requests do not reopen the catalog.
    sessions: sessionmaker[Session]
    #: The analyzer of authenticated requests (searches, the DPO's filings).
    analyzer: FaceAnalyzer
    #: Photos from the public portal: decoded and analysed in a lane of their own, not under ``vision_lock``.
    portal_lane: AnalysisLane
    #: OpenCV's detector keeps per-call state (its input size), so one analysis runs at a time; it also
    #: serialises searches of the process's shared copy of the index (the portal's included).
    vision_lock: threading.Lock = field(default_factory=threading.Lock)
    #: Crawls and imports started over the API, run one at a time in the background, kept in the catalog.
    jobs: JobRunner = field(kw_only=True)

    @classmethod
    def start(cls, settings: Settings, on_first_admin: FirstAdminHook | None = None) -> ServerState:
        """Open the catalog (migrating it), load the models, and create the first admin if none exists."""
        sessions = open_catalog(settings.catalog_url)
        audit_keys.attach(sessions, settings)  # the audit log's signing key, before anything is recorded
        given = settings.admin_password.get_secret_value() if settings.admin_password else None
        password = given or secrets.token_urlsafe(18)
        created = ensure_first_admin(sessions, password)
        if created and on_first_admin:
            on_first_admin(created, None if given else password)
        seed_at_start(settings, sessions)
        return cls(
            settings,
            sessions,
            build_analyzer(settings),
            AnalysisLane.for_portal(settings),
            jobs=JobRunner(settings, sessions),
        )

    @property
    def engine(self) -> Engine:
        return self.sessions.kw["bind"]

    def close(self) -> None:
        self.portal_lane.close()
        self.jobs.close()
        self.engine.dispose()


def server_state(request: Request) -> ServerState:
    """FastAPI dependency: the state the app's lifespan opened."""
    return request.app.state.facetrace
