"""Human-readable references (``AUTH-2026-00001``, ``RR-2026-00001``) for records people cite."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session


def next_reference(
    session: Session, id_column: InstrumentedAttribute[int], prefix: str, now: datetime
) -> str:
    """The next number in the table, behind a prefix and the year. References are stored in
    unique columns, so a concurrent twin fails on insert rather than being issued twice."""
    count = session.scalar(select(func.count(id_column))) or 0
    return f"{prefix}-{now:%Y}-{count + 1:05d}"
