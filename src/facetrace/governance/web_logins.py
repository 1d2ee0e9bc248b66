"""Web logins kept on the server: the browser's cookie holds a random session id, never a token.

The id is 256 random bits; the catalog keeps only its sha256 digest, the user, and when the login
began, ends (``FACETRACE_SESSION_HOURS`` later) or was ended (logout, the user disabled, a password
reset). A session id is not an API token: no API route accepts it, so a stolen cookie cannot be
turned into a long-lived credential without the password.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from facetrace.core.errors import AuthenticationError
from facetrace.governance.accounts import secret_digest
from facetrace.store.base import utcnow
from facetrace.store.governance_models import User, WebSession


def begin(session: Session, user: User, hours: int) -> tuple[WebSession, str]:
    """A new login of ``user`` for ``hours``; the plain id (for the cookie) is returned once."""
    plain = secrets.token_urlsafe(32)
    now = utcnow()
    login = WebSession(
        user=user,
        session_sha256=secret_digest(plain),
        created_at=now,
        expires_at=now + timedelta(hours=hours),
    )
    session.add(login)
    session.flush()
    return login, plain


def user_of(session: Session, session_id: str) -> User:
    """The signed-in user, while the login is neither ended, expired, nor its user disabled."""
    login = session.scalar(select(WebSession).where(WebSession.session_sha256 == secret_digest(session_id)))
    if login is None or login.revoked_at is not None or login.expires_at <= utcnow():
        raise AuthenticationError("this login has ended: log in again")
    if login.user.disabled:
        raise AuthenticationError(f"user {login.user.name!r} is disabled")
    return login.user


def end(session: Session, session_id: str) -> WebSession | None:
    """End one login (logout); None if it was unknown."""
    login = session.scalar(select(WebSession).where(WebSession.session_sha256 == secret_digest(session_id)))
    if login is not None and login.revoked_at is None:
        login.revoked_at = utcnow()
    return login


def end_all(session: Session, user: User) -> int:
    """End every open login of ``user``; returns how many."""
    result = session.execute(
        update(WebSession)
        .where(WebSession.user_id == user.id, WebSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
