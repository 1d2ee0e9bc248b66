"""Password guessing made slow: failed logins counted per account and per source address.

After :data:`FREE_FAILURES` failures of one account, or from one address, within
:data:`FORGET_AFTER` of each other, each further failure blocks the next attempt for
:data:`FIRST_DELAY` doubled per failure, up to :data:`LONGEST_DELAY`. A blocked attempt is refused
before the password is even hashed (429 with ``Retry-After``).

The counts live in the catalog (``login_throttle``), not in one process's memory: every server process
behind one address shares them, a restart does not wipe them, and their size is one row per account
or address that failed recently (stale rows are deleted as new failures come). A successful login
clears its account's count, never its address's: one valid account must not let an address guess
the passwords of others.
"""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from facetrace.core.errors import LoginThrottledError
from facetrace.store.base import utcnow
from facetrace.store.governance_models import LoginThrottle

FREE_FAILURES = 5
FIRST_DELAY = timedelta(seconds=30)
LONGEST_DELAY = timedelta(hours=1)
#: Failures further apart than this start counting again from zero. Far longer than the longest wait,
#: so that waiting out a block never wipes the count (at the cap, one guess an hour is all there is).
FORGET_AFTER = timedelta(hours=24)


def keys(user_name: str, address: str | None) -> list[str]:
    """The counters a login attempt touches: its account (as typed, case folded) and its address."""
    found = [f"user:{user_name.casefold()[:300]}"]
    if address:
        found.append(f"addr:{address[:300]}")
    return found


def check(session: Session, user_name: str, address: str | None) -> None:
    """Raise :class:`LoginThrottledError` if the account or the address must still wait."""
    now = utcnow()
    rows = session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys(user_name, address))))
    waits = [row.blocked_until - now for row in rows if row.blocked_until and row.blocked_until > now]
    if waits:
        seconds = math.ceil(max(waits).total_seconds())
        raise LoginThrottledError(
            f"too many failed logins for this account or from this address: try again in {seconds} s",
            retry_after_s=seconds,
        )


def _delay(failures: int) -> timedelta | None:
    if failures < FREE_FAILURES:
        return None
    doublings: int = 2 ** (failures - FREE_FAILURES)  # failures >= FREE_FAILURES: an int
    return min(FIRST_DELAY * doublings, LONGEST_DELAY)


def failed(session: Session, user_name: str, address: str | None) -> int:
    """Count a failure on each counter; returns the longest block it starts, in seconds (0: none)."""
    now = utcnow()
    session.execute(delete(LoginThrottle).where(LoginThrottle.last_failure_at < now - FORGET_AFTER))
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    longest = 0
    for key in keys(user_name, address):
        # Atomic on both databases: concurrent failures each add one.
        session.execute(
            insert(LoginThrottle)
            .values(key=key, failures=0, last_failure_at=now)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == key)
            .values(failures=LoginThrottle.failures + 1, last_failure_at=now)
        )
        row = session.get(LoginThrottle, key, populate_existing=True)
        assert row is not None
        delay = _delay(row.failures)
        if delay is not None:
            row.blocked_until = now + delay
            longest = max(longest, math.ceil(delay.total_seconds()))
    return longest


def succeeded(session: Session, user_name: str) -> None:
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == keys(user_name, None)[0]))
