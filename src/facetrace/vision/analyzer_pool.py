"""Face analyzers that searches check out, so that as many probe photos are analysed at once.

An OpenCV detector keeps per-call state (its input size), so one analyzer analyses one photo at
a time. The pool holds ``size`` of them, each with its own OpenCV and ONNX objects; a caller checks
one out for one analysis and hands it back (:meth:`AnalyzerPool.checkout`), and waits at most
``wait_s`` for one to be free before it is refused with :class:`~facetrace.core.errors.BusyError`.

:meth:`AnalyzerPool.analyzer` is a :class:`FaceAnalyzer` that does this for each photo it
analyses: a search given it holds an analyzer while its probe is analysed and no longer, so the
index, the catalog and the audit log are worked on while the analyzer serves another search.

Threads: ONNX sessions run one thread each already (:mod:`facetrace.vision.onnx_session`);
OpenCV's DNN engine gets the cores shared out among the pool's analyzers, so ``size``
analyses at once do not ask for more threads than there are cores.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import cv2

from facetrace.core.errors import BusyError
from facetrace.vision.analyzer import FaceAnalyzer, ImageAnalysis

#: Seconds a search waits for a free analyzer before it is refused.
WAIT_S = 10.0
#: Seconds a refused client is told to wait.
RETRY_AFTER_S = 5


class AnalyzerPool:
    """``size`` analyzers built by ``build``, each used by one caller at a time."""

    def __init__(self, build: Callable[[], FaceAnalyzer], size: int, *, wait_s: float = WAIT_S) -> None:
        if size < 1:
            raise ValueError("an analyzer pool needs at least one analyzer")
        # Process-wide: the server's analyses are these, so the cores are theirs to share.
        cv2.setNumThreads(max(1, (os.cpu_count() or 1) // size))
        self.size = size
        self._wait_s = wait_s
        self._free: queue.LifoQueue[FaceAnalyzer] = queue.LifoQueue()
        for _ in range(size):
            self._free.put(build())
        #: Which models the pool's analyzers run (each the same): read, never run, by :class:`PooledAnalyzer`.
        self.models = self._free.queue[0]
        self._lock = threading.Lock()
        self._busy = 0
        self._refused = 0

    @contextmanager
    def checkout(self) -> Iterator[FaceAnalyzer]:
        """One analyzer, the caller's alone until the block ends; :class:`BusyError` when none
        was free within the pool's wait."""
        try:
            analyzer = self._free.get(timeout=self._wait_s)
        except queue.Empty:
            with self._lock:
                self._refused += 1
            raise BusyError(
                f"all {self.size} face analyzers stayed busy for {self._wait_s:g} s: "
                "please try the search again shortly",
                retry_after_s=RETRY_AFTER_S,
            ) from None
        with self._lock:
            self._busy += 1
        try:
            yield analyzer
        finally:
            with self._lock:
                self._busy -= 1
            self._free.put(analyzer)

    @property
    def busy(self) -> int:
        """Analyzers checked out now."""
        return self._busy

    @property
    def refused(self) -> int:
        """Callers refused so far because none was free in time."""
        return self._refused

    def analyzer(self) -> FaceAnalyzer:
        """An analyzer that checks one of the pool's out for each photo it analyses."""
        return PooledAnalyzer(self)


class PooledAnalyzer(FaceAnalyzer):
    """Analyses each photo with an analyzer checked out of ``pool`` for that photo alone."""

    def __init__(self, pool: AnalyzerPool) -> None:
        # The detector and embedder name the models (model_id, dim); photos go to checked-out analyzers.
        super().__init__(pool.models.detector, pool.models.embedder, max_pixels=0, max_bytes=0)
        self._pool = pool

    def analyze(self, data: bytes) -> ImageAnalysis:
        with self._pool.checkout() as analyzer:
            return analyzer.analyze(data)


class AnalysedPhoto(FaceAnalyzer):
    """One photo's analysis, made beforehand: handed back when that photo is analysed again.

    The public portal analyses a photo in its own lane first (so that an unusable photo is refused
    before anything else is done) and then files the request with this in place of the analyzer.
    """

    def __init__(self, analyzer: FaceAnalyzer, photo: bytes, analysis: ImageAnalysis) -> None:
        super().__init__(analyzer.detector, analyzer.embedder, max_pixels=0, max_bytes=0)
        self._photo = photo
        self._analysis = analysis

    def analyze(self, data: bytes) -> ImageAnalysis:
        if data != self._photo:
            raise ValueError("this analysis is of another photo")
        return self._analysis
