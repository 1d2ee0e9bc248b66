"""The deployment's policy: kept in the catalog, the same for every process that opens it.

Authorisation policy, quotas, the burst alarm, offence categories and the expected-false-match
display limit bind the whole deployment, so they cannot come from each process's environment
(a command-line user could otherwise search under ``none`` while the server requires
authorisations). They live in the ``deployment_settings`` table, one row per setting. The
environment (``FACETRACE_*``, i.e. :class:`~facetrace.core.config.Settings`) only seeds a setting the
catalog does not hold yet: every setting on a new deployment, a newly added one after an upgrade.
After that only an admin changes them (:func:`change`), each change audited with its old and new value.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from facetrace.core.config import Settings
from facetrace.core.errors import InvalidValueError
from facetrace.governance import audit
from facetrace.governance.audit import Actor, Record
from facetrace.store.base import utcnow
from facetrace.store.governance_models import DeploymentSetting

OffenceCategory = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^\S(.*\S)?$")]


class DeploymentPolicy(BaseModel):
    """Every setting of the deployment's policy, typed and checked (no NaN or infinity anywhere)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    authorisation_policy: Literal["none", "required", "urgent"] = Field(
        description="none: optional; required: a granted authorisation per search; urgent: a pending one "
        "requested within authorisation_grace_hours is enough, and its results go if it is refused."
    )
    authorisation_scope: Literal["unit", "requester"] = Field(
        description="Who may search on an authorisation: the requester and their unit, or the requester only."
    )
    authorisation_valid_days: int = Field(ge=1, le=3650, description="A granted authorisation expires after.")
    authorisation_grace_hours: int = Field(ge=0, le=24 * 365)
    searches_per_day: int = Field(ge=1, le=10_000_000, description="Searches one user may run per day (UTC).")
    burst_searches_per_hour: int = Field(
        ge=1, le=10_000_000, description="More searches than this within an hour raise an alarm."
    )
    offence_categories: tuple[OffenceCategory, ...] = Field(min_length=1, max_length=200)
    max_expected_false_matches: float | None = Field(
        ge=0,
        le=1_000_000,
        description="Hide results expected to hold more false matches than this (none: show all).",
    )

    @field_validator("offence_categories")
    @classmethod
    def _distinct(cls, categories: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(categories)) != len(categories):
            raise ValueError("each offence category may be listed once")
        return categories


NAMES: tuple[str, ...] = tuple(DeploymentPolicy.model_fields)


def _seed(settings: Settings) -> dict[str, Any]:
    """The policy the environment asks for, for settings a new deployment does not hold yet."""
    return {name: getattr(settings, name) for name in NAMES}


def _stored(session: Session) -> dict[str, Any]:
    return {row.name: row.value for row in session.scalars(select(DeploymentSetting))}


def _checked(values: dict[str, Any]) -> DeploymentPolicy:
    try:
        return DeploymentPolicy.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidValueError(f"invalid deployment policy: {problems}") from None


def current(session: Session) -> DeploymentPolicy | None:
    """The policy the catalog holds, or None while some setting is not stored yet."""
    stored = _stored(session)
    if set(NAMES) - set(stored):
        return None
    return _checked({name: stored[name] for name in NAMES})


def load(sessions: sessionmaker[Session], settings: Settings, actor: Actor) -> DeploymentPolicy:
    """The deployment's policy; settings the catalog lacks are seeded from ``settings`` first (audited).

    Two processes seeding at once: the second one's insert collides on the setting's name, and it
    reads what the first one stored.
    """
    with sessions() as session:
        found = current(session)
    if found is not None:
        return found
    try:
        with sessions.begin() as session:
            stored = _stored(session)
            seeded = {name: value for name, value in _seed(settings).items() if name not in stored}
            policy = _checked({**seeded, **stored})
            dumped = policy.model_dump(mode="json")
            session.add_all(DeploymentSetting(name=name, value=dumped[name]) for name in seeded)
            session.flush()
            audit.append(
                session,
                actor,
                Record(
                    action="policy.seed",
                    details={"from": "environment", "values": {n: dumped[n] for n in seeded}},
                ),
            )
            return policy
    except IntegrityError:
        with sessions() as session:
            found = current(session)
        if found is None:
            raise
        return found


def _parsed(name: str, raw: Any) -> Any:
    """A value as typed on a command line or in a form (text) or sent as JSON, before validation."""
    if isinstance(raw, bool):
        raise InvalidValueError(f"{name} takes no true/false value")
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if name == "offence_categories":
        if text.startswith("["):
            try:
                return json.loads(text)
            except ValueError:
                raise InvalidValueError(
                    "offence_categories: a JSON list, or names separated by commas"
                ) from None
        return [part.strip() for part in text.split(",")]
    if name == "max_expected_false_matches" and text.lower() in ("", "none"):
        return None
    return text


def change(session: Session, actor: Actor, name: str, raw: Any) -> tuple[Any, Any]:
    """Set one setting (validated with all the others), audit old and new value; returns them."""
    if name not in NAMES:
        raise InvalidValueError(f"no policy setting {name!r}; settings: {', '.join(NAMES)}")
    before = current(session)
    if before is None:
        raise InvalidValueError("the deployment policy is not seeded yet; show it once first")
    old = before.model_dump(mode="json")[name]
    new = _checked({**before.model_dump(), name: _parsed(name, raw)}).model_dump(mode="json")[name]
    row = session.get(DeploymentSetting, name)
    assert row is not None  # current() found every setting
    row.value, row.changed_at, row.changed_by = new, utcnow(), actor.name
    details = {"name": name, "old": old, "new": new}
    audit.append(session, actor, Record(action="policy.change", details=details))
    return old, new


def applied(settings: Settings, policy: DeploymentPolicy) -> Settings:
    """``settings`` with the deployment's expected-false-match display limit, for code that reads it
    from a :class:`Settings` (the search itself)."""
    return settings.model_copy(update={"max_expected_false_matches": policy.max_expected_false_matches})
