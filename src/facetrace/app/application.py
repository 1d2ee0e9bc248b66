"""The application object: what a serving process opens once and every request shares.

:meth:`Facetrace.open` opens, in this order and once: the catalog (one engine and connection pool,
migrated), the audit log's signing key, the first admin when there is none, the settings seeded
into the catalog, then the face analyzers (the pool investigators' searches check out, and the
public portal's lane of its own) and the background job runner. :meth:`Facetrace.close` ends them.

Importing this module is cheap: OpenCV, FAISS and the job runner are imported by :meth:`open`,
so a command that never builds the object never pays for them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from facetrace.core.config import Settings

if TYPE_CHECKING:
    from facetrace.app.analysis_lanes import AnalysisLane
    from facetrace.app.jobs import JobRunner
    from facetrace.vision.analyzer import FaceAnalyzer
    from facetrace.vision.analyzer_pool import AnalyzerPool

#: Told the first admin's name and, when it was generated, its password (to print it once).
FirstAdminHook = Callable[[str, str | None], None]


@dataclass(slots=True)
class Facetrace:
    settings: Settings
    #: One engine (and connection pool) for the process: requests do not reopen the catalog.
    sessions: sessionmaker[Session]
    #: FACETRACE_ANALYZERS analyzers for authenticated requests (searches, the DPO's filings).
    analyzers: AnalyzerPool
    #: Photos from the public portal: analysed in a lane of their own, never by :attr:`analyzers`.
    portal_lane: AnalysisLane
    #: Crawls and imports started over the API, run one at a time in the background, kept in the catalog.
    jobs: JobRunner
    #: Analyses each photo with an analyzer checked out of :attr:`analyzers` for that photo alone.
    analyzer: FaceAnalyzer

    @classmethod
    def open(cls, settings: Settings, on_first_admin: FirstAdminHook | None = None) -> Facetrace:
        """Open the catalog (migrating it), create the first admin if none exists, load the models
        and start the job runner."""
        from facetrace.app.analysis_lanes import AnalysisLane
        from facetrace.app.jobs import JobRunner
        from facetrace.governance import audit_keys
        from facetrace.governance.services.accounts import ensure_first_admin
        from facetrace.governance.services.deployment_policy import seed_at_start
        from facetrace.store.engine import open_catalog
        from facetrace.vision.analyzer_pool import AnalyzerPool
        from facetrace.vision.factory import build_analyzer

        sessions = open_catalog(settings.catalog_url)
        audit_keys.attach(sessions, settings)  # the audit log's signing key, before anything is recorded
        given = settings.admin_password.get_secret_value() if settings.admin_password else None
        password = given or secrets.token_urlsafe(18)
        created = ensure_first_admin(sessions, password)
        if created and on_first_admin:
            on_first_admin(created, None if given else password)
        seed_at_start(settings, sessions)
        analyzers = AnalyzerPool(lambda: build_analyzer(settings), settings.analyzers)
        return cls(
            settings,
            sessions,
            analyzers,
            AnalysisLane.for_portal(settings, lambda: build_analyzer(settings)),
            JobRunner(settings, sessions),
            analyzers.analyzer(),
        )

    @property
    def engine(self) -> Engine:
        bound: Engine = self.sessions.kw["bind"]
        return bound

    def close(self) -> None:
        self.portal_lane.close()
        self.jobs.close()
        self.engine.dispose()
