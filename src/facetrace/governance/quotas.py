"""Quotas and bulk-use alarms, counted from the audit log itself (no second counter to drift).

Over the daily quota a search is refused. A burst (more searches within an hour than
the deployment expects of one person) does not stop the search but raises an alarm
entry in the audit log that the user's supervisor sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from facetrace.governance.audit import Actor
from facetrace.governance.deployment_policy import DeploymentPolicy
from facetrace.store.governance_models import AuditEntry


@dataclass(frozen=True, slots=True)
class Usage:
    today: int
    last_hour: int


def usage(session: Session, actor: Actor, now: datetime) -> Usage:
    """Searches ``actor`` ran (done, not refused) since midnight UTC and within the last hour."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)

    def since(start: datetime) -> int:
        query = select(func.count(AuditEntry.id)).where(
            AuditEntry.user_name == actor.name,
            AuditEntry.action == "search",
            AuditEntry.outcome == "done",
            AuditEntry.at >= start,
        )
        return int(session.scalar(query) or 0)

    return Usage(today=since(midnight), last_hour=since(now - timedelta(hours=1)))


def over_quota(policy: DeploymentPolicy, used: Usage) -> str | None:
    if used.today >= policy.searches_per_day:
        return (
            f"the daily quota of {policy.searches_per_day} searches per user is used up "
            "(the deployment's policy, searches_per_day); ask your supervisor"
        )
    return None


def is_burst(policy: DeploymentPolicy, used: Usage) -> bool:
    return used.last_hour + 1 > policy.burst_searches_per_hour
