"""The one place where an action is allowed or refused; refusals are audited too."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from facetrace.core.errors import PermissionDeniedError
from facetrace.governance import audit
from facetrace.governance.audit import Actor, Record
from facetrace.governance.roles import ALLOWED, Action, Role, may
from facetrace.store.governance_models import AuditEntry


def record(sessions: sessionmaker[Session], actor: Actor, entry: Record) -> AuditEntry:
    """Append one audit entry in a transaction of its own and commit it."""
    with sessions.begin() as session:
        return audit.append(session, actor, entry)


def authorize(sessions: sessionmaker[Session], actor: Actor, action: Action) -> None:
    """Return if ``actor`` may do ``action``; otherwise audit the denial and raise."""
    if may(frozenset(Role(r) for r in actor.roles), action):
        return
    record(sessions, actor, Record(action=action.value, outcome="denied"))
    allowed = ", ".join(sorted(ALLOWED[action]))
    raise PermissionDeniedError(
        f"{actor.name} ({', '.join(sorted(actor.roles)) or 'no role'}) may not {action.value}; "
        f"it needs one of: {allowed}. The refusal was recorded in the audit log."
    )
