"""The shared part of every service: who acts, the role check, the audit record."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from facetrace.core.config import Settings
from facetrace.core.errors import PermissionDeniedError
from facetrace.governance import deployment_policy
from facetrace.governance.audit import Actor, Record
from facetrace.governance.deployment_policy import DeploymentPolicy
from facetrace.governance.policy import authorize, record
from facetrace.governance.roles import Action, Role


class ServiceBase:
    """Holds the settings, the catalog sessions and the acting user."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], actor: Actor) -> None:
        self.settings = settings
        self.sessions = sessions
        self.actor = actor

    def allow(self, action: Action) -> None:
        authorize(self.sessions, self.actor, action)

    def record(self, entry: Record) -> None:
        record(self.sessions, self.actor, entry)

    def deployment_policy(self) -> DeploymentPolicy:
        """The deployment's policy as the catalog holds it (never this process's environment)."""
        return deployment_policy.load(self.sessions, self.settings, self.actor)

    @contextmanager
    def action(self, action: Action, **details: Any) -> Iterator[dict[str, Any]]:
        """Check, run the body, then record it with ``details`` (the body may add to them).

        A body that fails or is interrupted is recorded too: what it did before stays done.
        """
        self.allow(action)
        try:
            yield details
        except BaseException as exc:
            details["error"] = f"{exc.__class__.__name__}: {exc}".rstrip(": ")
            self.record(Record(action=action.value, outcome="failed", details=details))
            raise
        self.record(Record(action=action.value, details=details))

    def _reader_unit(self, action: Action) -> str | None:
        """Supervisors read their own unit's entries and figures; auditors and DPOs read all of them."""
        self.allow(action)
        if {Role.AUDITOR, Role.DPO} & self.actor.roles:
            return None
        if self.actor.unit is None:
            raise PermissionDeniedError(f"{self.actor.name} is a supervisor of no unit")
        return self.actor.unit
