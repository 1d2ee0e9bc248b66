"""Cheap password hashes for the tests run in this process.

Production hashes with pwdlib's recommended argon2id (64 MiB, three passes: about half a second a hash
on 2 cores, on purpose). The tests create and log in hundreds of accounts, and what they check is who
may do what, not how costly a guess is: here argon2id runs with the smallest parameters. The hashes
are still argon2id, and each names its parameters, so either hasher verifies the other's. Real
``facetrace`` processes the tests start (support.server_processes, support.cli's ``facetrace``)
keep the recommended parameters.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from facetrace.governance import passwords


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        cheap = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
        monkeypatch.setattr(passwords, "_hasher", cheap)
        yield
