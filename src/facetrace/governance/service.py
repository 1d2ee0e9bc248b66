"""The accountability layer's entry point: one acting user, every action checked and recorded.

The CLI, the API and the web pages open a :class:`Governance` for whoever acts and call
its methods; each checks the role in :mod:`facetrace.governance.policy`, does the
work, and appends to the audit log. No interface re-implements a rule. The methods
live in :mod:`facetrace.governance.services`, one module per concern.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from facetrace.core.config import Settings
from facetrace.governance import accounts, audit_keys, web_logins
from facetrace.governance.services.accounts import AccountService, IssuedToken, log_in
from facetrace.governance.services.audit_keys import AuditKeyService
from facetrace.governance.services.authorising import AuthorisationService
from facetrace.governance.services.configuring import PolicyService
from facetrace.governance.services.gallery import GalleryService
from facetrace.governance.services.oversight import OversightService
from facetrace.governance.services.rights_requests import RightsService
from facetrace.governance.services.searching import SearchService
from facetrace.governance.services.sources import SourceService
from facetrace.store.engine import open_catalog

__all__ = ["Governance", "IssuedToken"]


class Governance(
    SearchService,
    AuthorisationService,
    AccountService,
    OversightService,
    AuditKeyService,
    RightsService,
    SourceService,
    PolicyService,
    GalleryService,
):
    """What the acting user may do with the catalog at ``settings``, with an audit entry per action."""

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
