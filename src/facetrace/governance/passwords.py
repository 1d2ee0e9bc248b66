"""Passwords: the policy a new one must meet, and argon2 hashing in a bounded pool.

The policy: at least :data:`MIN_LENGTH` characters, not the user's own name, and not one of the
30,000 most common passwords of the list shipped with zxcvbn (``FREQUENCY_LISTS['passwords']``,
compiled from leaked password dumps), compared case-insensitively.

argon2 is memory-hard on purpose (pwdlib's recommended parameters take 64 MiB per hash), so a burst of
concurrent logins must not run a hash each: at most :data:`CONCURRENT_HASHES` run at once, at most
:data:`WAITING_HASHES` more wait their turn, and any further one is refused at once with
:class:`~facetrace.core.errors.BusyError` (503, try again in a second).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from pwdlib import PasswordHash

from facetrace.core.errors import BusyError, FacetraceError

MIN_LENGTH = 12
CONCURRENT_HASHES = 2
WAITING_HASHES = 8

_T = TypeVar("_T")
_hasher = PasswordHash.recommended()
_running = threading.BoundedSemaphore(CONCURRENT_HASHES)
_admitted = threading.BoundedSemaphore(CONCURRENT_HASHES + WAITING_HASHES)


class WeakPasswordError(FacetraceError):
    """A new password that the policy refuses (the message says which rule)."""


@functools.cache
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(word.casefold() for word in FREQUENCY_LISTS["passwords"])


def check_policy(password: str, user_name: str) -> None:
    """Return if ``password`` may be chosen by ``user_name``; raise :class:`WeakPasswordError` if not."""
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(f"a password needs at least {MIN_LENGTH} characters")
    folded = password.casefold()
    if folded == user_name.casefold():
        raise WeakPasswordError("a password must not be the user name")
    if folded in _common_passwords():
        raise WeakPasswordError(
            "this password is in the list of the 30,000 most common passwords: choose another"
        )


@contextmanager
def _slot() -> Iterator[None]:
    if not _admitted.acquire(blocking=False):
        raise BusyError("too many logins at once: try again in a second", retry_after_s=1)
    try:
        with _running:
            yield
    finally:
        _admitted.release()


def _bounded(work: Callable[[], _T]) -> _T:
    with _slot():
        return work()


def hash_password(password: str) -> str:
    return _bounded(lambda: _hasher.hash(password))


def verify(password: str, stored_hash: str | None) -> tuple[bool, str | None]:
    """Whether ``password`` matches ``stored_hash`` and, if its parameters are outdated, a new hash.

    Without a stored hash a dummy one is computed, so an unknown account costs the same time.
    """
    if stored_hash is None:
        hash_password(password)
        return False, None
    return _bounded(lambda: _hasher.verify_and_update(password, stored_hash))
