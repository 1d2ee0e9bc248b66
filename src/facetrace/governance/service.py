"""The accountability layer's entry point: one acting user, every action checked and recorded.

The CLI, the API and the web pages open a :class:`Governance` for whoever acts and call its
services, one per concern: ``gov.searches.search(...)``, ``gov.rights.file(...)``,
``gov.sources.crawl(...)``. Each checks the role in :mod:`facetrace.governance.policy`, does the
work, and appends to the audit log; no interface re-implements a rule. A service lives in
:mod:`facetrace.governance.services` under the same name as the rules it applies
(``services/erasure.py`` applies ``erasure.py``).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from facetrace.core.config import Settings
from facetrace.governance import accounts, audit_keys, web_logins
from facetrace.governance.audit import Actor
from facetrace.governance.services.accounts import AccountService, IssuedToken, log_in
from facetrace.governance.services.base import ServiceBase
from facetrace.store.engine import open_catalog

if TYPE_CHECKING:
    from facetrace.governance.services.audit import AuditService
    from facetrace.governance.services.authorisations import AuthorisationService
    from facetrace.governance.services.collection_jobs import CollectionJobService
    from facetrace.governance.services.deployment_policy import PolicyService
    from facetrace.governance.services.erasure import ErasureService
    from facetrace.governance.services.gallery import GalleryService
    from facetrace.governance.services.reports import ReportService
    from facetrace.governance.services.rights import RightsService
    from facetrace.governance.services.searches import SearchService
    from facetrace.governance.services.sources import SourceService

__all__ = ["Governance", "IssuedToken"]


class Governance(ServiceBase):
    """What the acting user may do with the catalog at ``settings``, with an audit entry per action:
    the role check and record every service shares (:class:`ServiceBase`), and the services, each
    made (and its module imported) when first used: a command that searches does not load the crawler."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], actor: Actor) -> None:
        audit_keys.attach(sessions, settings)  # whatever opened the catalog, what it records is signed
        super().__init__(settings, sessions, actor)

    @cached_property
    def accounts(self) -> AccountService:
        return AccountService(self.settings, self.sessions, self.actor)

    @cached_property
    def audit(self) -> AuditService:
        from facetrace.governance.services.audit import AuditService

        return AuditService(self.settings, self.sessions, self.actor)

    @cached_property
    def authorisations(self) -> AuthorisationService:
        from facetrace.governance.services.authorisations import AuthorisationService

        return AuthorisationService(self.settings, self.sessions, self.actor)

    @cached_property
    def erasure(self) -> ErasureService:
        from facetrace.governance.services.erasure import ErasureService

        return ErasureService(self.settings, self.sessions, self.actor)

    @cached_property
    def gallery(self) -> GalleryService:
        from facetrace.governance.services.gallery import GalleryService

        return GalleryService(self.settings, self.sessions, self.actor)

    @cached_property
    def jobs(self) -> CollectionJobService:
        from facetrace.governance.services.collection_jobs import CollectionJobService

        return CollectionJobService(self.settings, self.sessions, self.actor)

    @cached_property
    def policy(self) -> PolicyService:
        from facetrace.governance.services.deployment_policy import PolicyService

        return PolicyService(self.settings, self.sessions, self.actor)

    @cached_property
    def reports(self) -> ReportService:
        from facetrace.governance.services.reports import ReportService

        return ReportService(self.settings, self.sessions, self.actor)

    @cached_property
    def rights(self) -> RightsService:
        from facetrace.governance.services.rights import RightsService

        return RightsService(self.erasure)

    @cached_property
    def searches(self) -> SearchService:
        from facetrace.governance.services.searches import SearchService

        return SearchService(self.settings, self.sessions, self.actor)

    @cached_property
    def sources(self) -> SourceService:
        from facetrace.governance.services.sources import SourceService

        return SourceService(self.settings, self.sessions, self.actor)

    @classmethod
    def open(cls, settings: Settings, token: str | None = None) -> Governance:
        """Act as the token's user, or as the bootstrap operator where the deployment allows it."""
        sessions = open_catalog(settings.catalog_url)
        audit_keys.attach(sessions, settings)
        with sessions.begin() as session:
            actor = accounts.identify(session, token, allow_bootstrap=settings.allow_bootstrap)
        governance = cls(settings, sessions, actor)
        # A new deployment's policy is seeded (and audited) when a command first opens it, not in the
        # middle of the first search: that search's own audit entry is then the only write it needs.
        governance.deployment_policy()
        return governance

    @classmethod
    def with_token(cls, settings: Settings, sessions: sessionmaker[Session], token: str) -> Governance:
        """Act as the token's user over catalog sessions the caller keeps open (a server's, shared
        by its requests). Never the bootstrap operator: whoever calls must show a token."""
        with sessions.begin() as session:
            actor = accounts.actor_of(accounts.user_for_token(session, token))
        return cls(settings, sessions, actor)

    @classmethod
    def public_portal(cls, settings: Settings, sessions: sessionmaker[Session]) -> Governance:
        """Act as the public rights portal: anyone may file a request about themselves, nothing more."""
        try:
            with sessions.begin() as session:
                actor = accounts.actor_of(accounts.portal_user(session))
        except IntegrityError:  # the account is made at first use: a request alongside made it first
            with sessions.begin() as session:
                actor = accounts.actor_of(accounts.portal_user(session))
        return cls(settings, sessions, actor)

    @classmethod
    def with_password(
        cls,
        settings: Settings,
        sessions: sessionmaker[Session],
        name: str,
        password: str,
        address: str | None = None,
    ) -> Governance:
        """Act as the user whose password this is (to log in), from ``address``: failures are throttled
        per account and per address, and audited."""
        return cls(settings, sessions, log_in(settings, sessions, name, password, address))

    @classmethod
    def with_web_login(
        cls, settings: Settings, sessions: sessionmaker[Session], session_id: str
    ) -> Governance:
        """Act as the user signed in to the web app with this (server-side) session id."""
        with sessions.begin() as session:
            actor = accounts.actor_of(web_logins.user_of(session, session_id))
        return cls(settings, sessions, actor)
