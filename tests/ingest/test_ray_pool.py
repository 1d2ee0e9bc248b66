"""The Ray engine: the same analyses as the local pool, every job answered once, crashes isolated.

One local Ray instance (2 CPUs) serves the whole module: starting Ray takes seconds.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import support.pools
from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError
from facetrace.gallery.gallery import Gallery
from facetrace.ingest.pool import Failure, WorkerPool
from facetrace.ingest.worker import analysis_pool
from facetrace.vision.analyzer import ImageAnalysis
from support.ingesting import ingest
from support.pools import shout_or_die

ray = pytest.importorskip("ray", reason="the Ray engine needs Ray (pip install ray)")

from facetrace.ingest.ray_pool import RayPool  # noqa: E402  (only once Ray is known to be there)

WORKERS = 2
#: Starting the module's Ray instance alone takes seconds: the inner loop (make test-fast) leaves Ray out.
pytestmark = pytest.mark.slow
# no_catalog: pools only; only the ingest test opens a catalog.

# Ray's workers cannot import test modules (tests/ is on pytest's path, not theirs): send
# their functions by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
ray.cloudpickle.register_pickle_by_value(support.pools)


@pytest.fixture(scope="module", autouse=True)
def ray_instance() -> Iterator[None]:
    """A local Ray for the module; pools find it connected and leave it running."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=WORKERS, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
        try:
            yield
        finally:
            ray.shutdown()


def refuse_to_start() -> None:
    raise RuntimeError("no models here")


def analyses(pool: WorkerPool | RayPool, jobs: list[tuple[int, bytes]]) -> dict[int, Any]:
    results = list(pool.map(jobs))
    keys = [key for key, _ in results]
    assert sorted(keys) == sorted(key for key, _ in jobs), "every job answered exactly once"
    return dict(results)


@pytest.mark.no_catalog
def test_ray_analyses_match_the_local_pool(
    tmp_path: pytest.TempPathFactory, astronaut_jpeg: bytes, coffee_png: bytes
) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    corrupt = astronaut_jpeg[:20] + b"\x00" * 500
    jobs = [(0, astronaut_jpeg), (1, coffee_png), (2, corrupt), (3, astronaut_jpeg), (4, coffee_png)]
    with analysis_pool(settings, 1, thumbnails=True) as pool:
        local = analyses(pool, jobs)
    with analysis_pool(settings, WORKERS, thumbnails=True, engine="ray") as pool:
        assert isinstance(pool, RayPool)
        remote = analyses(pool, jobs)

    assert isinstance(local[2], Failure)
    assert remote[2] == local[2]
    for key in (0, 1, 3, 4):
        ours, theirs = remote[key], local[key]
        assert isinstance(ours, ImageAnalysis) and isinstance(theirs, ImageAnalysis)
        assert (ours.width, ours.height, ours.phash, ours.model_id) == (
            theirs.width,
            theirs.height,
            theirs.phash,
            theirs.model_id,
        )
        assert len(ours.faces) == len(theirs.faces)
        for a, b in zip(ours.faces, theirs.faces, strict=True):
            np.testing.assert_allclose(a.detection.box, b.detection.box, atol=1e-3)
            np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-5)
            assert a.thumbnail == b.thumbnail
    assert len(remote[0].faces) == 1 and not remote[1].faces


@pytest.mark.no_catalog
def test_every_job_gets_an_answer_and_the_killer_is_named() -> None:
    jobs = [(i, f"job{i}".encode()) for i in range(12)]
    jobs.insert(5, (100, b"die"))
    jobs.insert(9, (101, b"raise"))
    with RayPool(shout_or_die, workers=WORKERS, in_flight_per_worker=3) as pool:
        results = analyses(pool, jobs)
    assert results[100] == Failure("the image crashed a worker process")
    assert results[101] == Failure("ValueError: bad input")
    assert all(results[i] == f"JOB{i}".encode() for i in range(12))


@pytest.mark.no_catalog
def test_two_crashes_in_one_run() -> None:
    jobs = [(i, b"die" if i in (3, 7) else b"ok") for i in range(10)]
    with RayPool(shout_or_die, workers=WORKERS) as pool:
        results = analyses(pool, jobs)
    assert sorted(k for k, v in results.items() if isinstance(v, Failure)) == [3, 7]
    assert sum(v == b"OK" for v in results.values()) == 8


@pytest.mark.no_catalog
def test_a_worker_that_cannot_start_fails_the_pool_at_once() -> None:
    with pytest.raises(ray.exceptions.RayActorError, match="no models here"):  # noqa: SIM117
        with RayPool(shout_or_die, workers=1, initializer=refuse_to_start):
            pass


@pytest.mark.no_catalog
def test_without_a_connection_the_pool_starts_its_own_ray_and_stops_it() -> None:
    """Run in a fresh interpreter: this one is connected to the module's instance."""
    script = textwrap.dedent(
        """
        import ray
        from facetrace.ingest.ray_pool import RayPool

        with RayPool(bytes.upper, workers=1) as pool:
            assert ray.is_initialized()
            assert list(pool.map([("a", b"x")])) == [("a", b"X")]
        assert not ray.is_initialized()
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


@pytest.mark.no_catalog
def test_unknown_engine_and_missing_ray_are_clear_errors(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(FacetraceError, match="unknown analysis engine 'spark'"):
        analysis_pool(settings, engine="spark")
    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without Ray looks like
    monkeypatch.delitem(sys.modules, "facetrace.ingest.ray_pool")
    with pytest.raises(FacetraceError, match=r"install facetrace\[ray\]"):
        analysis_pool(settings, engine="ray")


def test_an_ingest_on_the_ray_engine_fills_the_gallery_like_the_local_one(
    tmp_path: Path, astronaut_jpeg: bytes, coffee_png: bytes
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "astronaut.jpg").write_bytes(astronaut_jpeg)
    (folder / "coffee.png").write_bytes(coffee_png)
    settings = Settings(data_dir=tmp_path / "var", workers=1, ingest_engine="ray")
    stats = ingest(settings, [str(folder)], source_name="nasa")
    assert (stats.new_images, stats.faces, stats.images_without_faces, stats.failures) == (2, 1, 1, [])
    with Gallery.write_lock(settings):
        assert len(Gallery.open(settings, "sface-2021dec@0ba9fbfa01b5", 128).index) == 1
