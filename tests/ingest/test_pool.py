"""Worker processes: results keep flowing when a job raises or kills its worker outright."""

from __future__ import annotations

import pytest

from facetrace.ingest.pool import Failure, WorkerPool
from support.pools import shout_or_die

# Never opens a catalog (worker processes only): the --catalog postgres pass skips it.
pytestmark = pytest.mark.no_catalog


def test_every_job_gets_an_answer_and_the_killer_is_named() -> None:
    jobs = [(i, f"job{i}".encode()) for i in range(12)]
    jobs.insert(5, (100, b"die"))
    jobs.insert(9, (101, b"raise"))
    with WorkerPool(shout_or_die, workers=2, in_flight_per_worker=3) as pool:
        results = dict(pool.map(jobs))
    assert set(results) == {key for key, _ in jobs}
    assert results[100] == Failure("the image crashed a worker process")
    assert isinstance(results[101], Failure) and "ValueError: bad input" in results[101].message
    assert all(results[i] == f"JOB{i}".encode() for i in range(12))


def test_two_crashes_in_one_run() -> None:
    jobs = [(i, b"die" if i in (3, 7) else b"ok") for i in range(10)]
    with WorkerPool(shout_or_die, workers=2) as pool:
        results = dict(pool.map(jobs))
    assert [k for k, v in results.items() if isinstance(v, Failure)] in ([3, 7], [7, 3])
    assert sum(v == b"OK" for v in results.values()) == 8
