"""The analyzer pool: as many analyses at once as it holds analyzers, a clear refusal past its wait,
OpenCV's threads shared out, and FACETRACE_ANALYZERS checked."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import pytest
from pydantic import ValidationError

from facetrace.core.config import Settings
from facetrace.core.errors import BusyError
from facetrace.vision.analyzer import FaceAnalyzer, ImageAnalysis
from facetrace.vision.analyzer_pool import AnalyzerPool
from facetrace.vision.factory import build_analyzer

#: How long a test waits for another thread before it gives up: a guard against a hang, not a bound
#: on any latency.
PATIENCE_S = 30.0


class MeetingAnalyzer(FaceAnalyzer):
    """Analyses only once ``barrier``'s other parties are analysing too: proof that they overlap."""

    def __init__(self, analyzer: FaceAnalyzer, barrier: threading.Barrier) -> None:
        super().__init__(analyzer.detector, analyzer.embedder, max_pixels=10**8, max_bytes=10**8)
        self._barrier = barrier

    def analyze(self, data: bytes) -> ImageAnalysis:
        self._barrier.wait(timeout=PATIENCE_S)
        return super().analyze(data)


def test_as_many_photos_are_analysed_at_once_as_the_pool_holds_analyzers(
    analyzer: FaceAnalyzer, astronaut_jpeg: bytes
) -> None:
    barrier = threading.Barrier(3)
    pool = AnalyzerPool(lambda: MeetingAnalyzer(build_analyzer(Settings()), barrier), 3)
    pooled = pool.analyzer()
    with ThreadPoolExecutor(3) as threads:
        analyses = list(threads.map(lambda _: pooled.analyze(astronaut_jpeg), range(3)))
    assert [len(analysis.faces) for analysis in analyses] == [1, 1, 1]
    assert pool.busy == 0 and pool.refused == 0
    assert pooled.model_id == analyzer.model_id  # a search knows which gallery it reads


def test_each_caller_has_an_analyzer_of_its_own(analyzer: FaceAnalyzer) -> None:
    pool = AnalyzerPool(
        lambda: FaceAnalyzer(analyzer.detector, analyzer.embedder, max_pixels=1, max_bytes=1), 2
    )
    with pool.checkout() as first, pool.checkout() as second:
        assert first is not second
        assert pool.busy == 2
    assert pool.busy == 0


def test_a_caller_is_refused_clearly_once_no_analyzer_came_free_in_time(analyzer: FaceAnalyzer) -> None:
    pool = AnalyzerPool(lambda: analyzer, 1, wait_s=0.05)
    busy = pytest.raises(BusyError, match="all 1 face analyzers stayed busy")
    with pool.checkout(), busy as refused, pool.checkout():
        pass  # pragma: no cover - never reached: the second checkout is refused
    assert refused.value.retry_after_s > 0
    assert pool.refused == 1
    with pool.checkout() as again:  # handed back: free again
        assert again is analyzer


def test_an_analyzer_is_handed_back_when_its_analysis_fails(analyzer: FaceAnalyzer) -> None:
    pool = AnalyzerPool(lambda: analyzer, 1, wait_s=0.05)
    with pytest.raises(Exception, match="image"):
        pool.analyzer().analyze(b"not an image")
    with pool.checkout():
        assert pool.busy == 1


def test_opencv_threads_are_shared_out_so_the_analyses_do_not_oversubscribe_the_cores(
    analyzer: FaceAnalyzer,
) -> None:
    cores = os.cpu_count() or 1
    before = cv2.getNumThreads()
    try:
        AnalyzerPool(lambda: analyzer, cores)
        assert cv2.getNumThreads() == 1
        AnalyzerPool(lambda: analyzer, 1)
        assert cv2.getNumThreads() == cores
    finally:
        cv2.setNumThreads(before)


def test_facetrace_analyzers_defaults_to_the_cores_and_is_range_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().analyzers == (os.cpu_count() or 1)
    monkeypatch.setenv("FACETRACE_ANALYZERS", "3")
    assert Settings().analyzers == 3
    for wrong in ("0", "-1", "65", "many"):
        monkeypatch.setenv("FACETRACE_ANALYZERS", wrong)
        with pytest.raises(ValidationError, match="analyzers"):
            Settings()
