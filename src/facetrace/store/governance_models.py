"""Tables of the accountability layer: who may act, and the record of what they did.

* ``units``          — a team or agency; supervisors see their own unit.
* ``users``          — an account with a password hash (argon2) and one or more roles.
* ``user_roles``     — the roles a user holds.
* ``api_tokens``     — bearer tokens, stored as sha256 digests, with expiry and revocation.
* ``web_sessions``   — web logins, by the sha256 of the cookie's session id, with expiry and logout.
* ``login_throttle`` — failed logins per account and per address, and how long each must wait.
* ``audit_entries``  — the append-only, hash-chained log of every governed action.
* ``audit_head``     — one row: the newest entry's sequence number and hash. Appenders
  update it first, which serialises them on every database, and a log whose tail was
  cut off no longer ends where the head says it does.
* ``audit_keys``     — the public keys that have signed the log, with the entries each signed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from facetrace.store.base import Base, BigId, utcnow


class Unit(Base):
    __tablename__ = "units"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    #: The name with spacing collapsed and case folded: "North" and "north " are one unit.
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    password_hash: Mapped[str | None] = mapped_column(Text)
    #: The local operator account the CLI uses on a fresh install; every audit entry says so.
    is_bootstrap: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: A machine's account: no password, limited roles, tokens issued by an admin only.
    is_service: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Set by an admin's password reset: the next login must choose a new password first.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    unit: Mapped[Unit | None] = relationship()
    roles: Mapped[list[UserRole]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def role_names(self) -> list[str]:
        return sorted(r.role for r in self.roles)


class UserRole(Base):
    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    #: sha256 of the token: tokens are 256 random bits, so a fast digest is safe and lookups are exact.
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class WebSession(Base):
    """A web login: the cookie carries a random id, stored here as its sha256 digest only."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class LoginThrottle(Base):
    """Failed logins of one account (``user:<name>``) or one address (``addr:<ip>``), shared by every
    server process of the deployment and kept over restarts."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime]
    blocked_until: Mapped[datetime | None]


class AuditEntry(Base):
    """One governed action. Never updated or deleted; ``hash`` chains it to the entry before."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)  # = sequence number
    at: Mapped[datetime]
    user_name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str | None] = mapped_column(String(200))
    bootstrap: Mapped[bool] = mapped_column(Boolean)
    action: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # done | denied | refused
    case_ref: Mapped[str | None] = mapped_column(String(200))
    offence: Mapped[str | None] = mapped_column(String(100))
    purpose: Mapped[str | None] = mapped_column(Text)
    authorisation_ref: Mapped[str | None] = mapped_column(String(200))
    probe_sha256: Mapped[str | None] = mapped_column(String(64))
    result_count: Mapped[int | None] = mapped_column(Integer)
    result_face_ids: Mapped[list[int] | None] = mapped_column(JSON)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: Ed25519 signature (base64) over the hash, by the key ``key_id`` names; none on entries
    #: written before the log was signed (the entry that sealed them signs their head).
    key_id: Mapped[str | None] = mapped_column(String(64))
    signature: Mapped[str | None] = mapped_column(String(100))


class AuditHead(Base):
    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    seq: Mapped[int] = mapped_column(BigId)
    hash: Mapped[str] = mapped_column(String(64))
    #: The key that signs the next entry (changed by a rotation); none until the log is sealed.
    key_id: Mapped[str | None] = mapped_column(String(64))


class AuditKey(Base):
    """A public key of the audit log, kept for exports and for verifying old entries.

    Only a convenience: verification trusts a key because it comes from outside the catalog
    (the key file, ``--public-key``) or is linked to such a key by a signed rotation entry.
    """

    __tablename__ = "audit_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the raw public key
    public_key: Mapped[str] = mapped_column(String(64))  # base64 of the raw 32 bytes
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_seq: Mapped[int | None] = mapped_column(BigId)  # the first entry it signs
    last_seq: Mapped[int | None] = mapped_column(BigId)  # the rotation entry it signed last


class Authorisation(Base):
    """Leave to run searches for one case: requested by an investigator, decided by a supervisor
    (or recorded as granted by an outside judicial or administrative authority)."""

    __tablename__ = "authorisations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reference: Mapped[str] = mapped_column(String(100), unique=True)
    case_ref: Mapped[str] = mapped_column(String(200), index=True)
    unit: Mapped[str | None] = mapped_column(String(200))  # its name when requested, for display
    #: The unit whose members may search on it (with the requester): compared by id, never by name.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    justification: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="requested")  # requested | granted | refused
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
    external_authority: Mapped[str | None] = mapped_column(String(200))  # e.g. a court; its reference
    external_reference: Mapped[str | None] = mapped_column(String(200))  # and date are kept too
    #: Set when granted (or recorded as granted); a granted authorisation without it is not usable.
    expires_at: Mapped[datetime | None]


class DeploymentSetting(Base):
    """One setting of the deployment's policy (see :mod:`facetrace.governance.deployment_policy`)."""

    __tablename__ = "deployment_settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_by: Mapped[str | None] = mapped_column(String(200))  # None: seeded from the environment


class CaseResult(Base):
    """The leads a search gave for a case, kept for the investigator (the probe never is).

    Deleted (``results`` set to None, with the reason) when the authorisation the search
    relied on is refused; the audit entry keeps the fact.
    """

    __tablename__ = "case_results"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    audit_seq: Mapped[int] = mapped_column(BigId, index=True)
    user_name: Mapped[str] = mapped_column(String(200), index=True)
    case_ref: Mapped[str] = mapped_column(String(200), index=True)
    authorisation_id: Mapped[int | None] = mapped_column(ForeignKey("authorisations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    results: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    deleted_at: Mapped[datetime | None]
    deleted_reason: Mapped[str | None] = mapped_column(Text)


class RightsRequest(Base):
    """A data subject's request (GDPR art. 15 access, 17 erasure, 21 objection), tracked to its deadline."""

    __tablename__ = "rights_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reference: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # access | erasure | objection
    status: Mapped[str] = mapped_column(String(16), default="received")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime]
    contact: Mapped[str | None] = mapped_column(Text)  # how to answer; nothing more about the person
    urls: Mapped[list[str]] = mapped_column(JSON, default=list)  # images or pages the person named
    #: Gallery faces that matched the person's photo when the request was filed (the photo is not kept).
    matched_face_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    closed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(Text)  # e.g. the certificate or report reference
    #: The sha256 of the secret code given with the reference: both are needed to follow the request.
    code_sha256: Mapped[str | None] = mapped_column(String(64))
    #: An access request's report can be downloaded until then, and is deleted after (None: no report).
    report_until: Mapped[datetime | None]

    events: Mapped[list[RightsEvent]] = relationship(
        cascade="all, delete-orphan", order_by="RightsEvent.id", lazy="selectin"
    )


class RightsEvent(Base):
    """One step in a request's history."""

    __tablename__ = "rights_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("rights_requests.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)


class DoNotCollect(Base):
    """Never collect again: a URL prefix, a domain, or (with the person's explicit consent) one
    face template, used only to drop matching faces at ingest."""

    __tablename__ = "do_not_collect"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("rights_requests.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # url | domain | template
    value: Mapped[str | None] = mapped_column(Text)  # the URL prefix or domain
    model_id: Mapped[str | None] = mapped_column(String(100))
    template: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: False while the request that asked for it is not yet verified and executed: nothing is blocked.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
