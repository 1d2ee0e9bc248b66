"""The deployment's policy: shown to staff, changed by an admin only, every change audited."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from facetrace.core.config import Settings
from facetrace.governance import accounts, deployment_policy
from facetrace.governance.deployment_policy import DeploymentPolicy
from facetrace.governance.roles import Action, Role
from facetrace.governance.services.base import ServiceBase
from facetrace.store.governance_models import User, UserRole


class PolicyService(ServiceBase):
    """``gov.policy``: the deployment's policy, shown to anyone signed in, changed by an admin."""

    def show(self) -> DeploymentPolicy:
        """Every setting of the deployment's policy (staff may read it: it says what binds them)."""
        self.allow(Action.VIEW_STATS)
        return self.deployment_policy()

    def change(self, name: str, value: Any) -> tuple[Any, Any]:
        """Set one setting (text as typed, or a JSON value); returns (old, new). Admins only."""
        self.allow(Action.CONFIGURE)
        self.deployment_policy()  # a new deployment's policy is seeded before it is changed
        with self.sessions.begin() as session:
            return deployment_policy.change(session, self.actor, name, value)


def seed_at_start(settings: Settings, sessions: sessionmaker[Session]) -> None:
    """A server starting on a new deployment seeds its policy from the server's environment, before
    any other process can, as the deployment's oldest admin (the one that started it)."""
    with sessions() as session:
        if deployment_policy.current(session) is not None:
            return
        admin = session.scalar(
            select(User)
            .join(UserRole)
            .where(UserRole.role == Role.ADMIN.value, User.is_bootstrap.is_(False))
            .order_by(User.id)
            .limit(1)
        )
        if admin is None:
            return
        actor = accounts.actor_of(admin)
    deployment_policy.load(sessions, settings, actor)
