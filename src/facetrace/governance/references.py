"""References people cite: numbered ones for internal records (``AUTH-2026-00001``), and unguessable
ones, each with a secret code, for what the public files (``RR-2026-7KQ2MXH4TZ3PWNAD``).

A public reference is drawn at random (80 bits), so it tells nothing of how many requests
exist or were filed before it, and knowing one does not lead to another. The code printed with
it (another 80 random bits) is what proves its holder filed the request; only its sha256 is
stored, and it is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

#: RFC 4648 base32: no 0/1/8/9, so nothing reads as O, I or B.
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
RANDOM_CHARACTERS = 16  # 5 bits each: 80 bits


def next_reference(
    session: Session, id_column: InstrumentedAttribute[int], prefix: str, now: datetime
) -> str:
    """The next number in the table, behind a prefix and the year, for records only signed-in users
    see. References are stored in unique columns, so a concurrent twin fails on insert rather than
    being issued twice."""
    count = session.scalar(select(func.count(id_column))) or 0
    return f"{prefix}-{now:%Y}-{count + 1:05d}"


def random_reference(prefix: str, now: datetime) -> str:
    """A reference no one can guess or count from: the prefix, the year and 80 random bits."""
    return f"{prefix}-{now:%Y}-{_random_characters()}"


def secret_code() -> str:
    """A code to hand out with a public reference (80 random bits, in base32)."""
    return _random_characters()


def code_digest(code: str) -> str:
    """What is stored of a code. A plain sha256 is enough: the code is random, not chosen by a person."""
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def code_matches(code: str, digest: str | None) -> bool:
    """Whether ``code`` is the one whose digest is stored, in time that does not depend on where they
    differ (a request without a stored code matches nothing)."""
    return hmac.compare_digest(code_digest(code), digest or "-" * 64) and digest is not None


def _random_characters() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_CHARACTERS))
