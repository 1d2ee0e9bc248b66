"""A lane of face analysis with its own analyzers and its own limits, for photos from anonymous senders.

The public portal's photos are decoded and analysed here, never by the analyzer (nor under the lock)
that investigators' searches wait on: whatever the portal is sent, a search does not queue behind it.

At most ``concurrency`` photos are worked on at once, each on a thread borrowed through the lane's
own capacity limiter, so neither the server's event loop nor the thread pool every other route runs
in is held by them; at most ``queue`` more wait. Past that, :meth:`AnalysisLane.run` refuses at once
with :class:`~facetrace.errors.BusyError` (503 with ``Retry-After``), before a byte is decoded: the
refusal depends on the load alone, never on what the photo shows.

The lane's state is on /metrics: ``facetrace_analysis_lane_photos{lane, state="running"|"waiting"}``
and ``facetrace_analysis_lane_refused_total{lane}``.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from typing import TypeVar

import anyio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from facetrace.config import Settings
from facetrace.errors import BusyError
from facetrace.vision.analyzer import FaceAnalyzer, ImageAnalysis
from facetrace.vision.factory import build_analyzer

Result = TypeVar("Result")

#: Seconds a refused sender is told to wait: the same whatever the load, so it says nothing more.
RETRY_AFTER_S = 30


class AnalysisLane(Collector):
    """Photos analysed ``concurrency`` at a time by analyzers of the lane's own, ``queue`` more waiting."""

    def __init__(self, name: str, settings: Settings, *, concurrency: int, queue_size: int) -> None:
        self.name = name
        self._settings = settings
        self._capacity = concurrency + queue_size
        self._limiter = anyio.CapacityLimiter(concurrency)
        #: Analyzers not in use; one is built when a thread finds none, so never more than ``concurrency``.
        self._idle: queue.SimpleQueue[FaceAnalyzer] = queue.SimpleQueue()
        self._admitted = 0  # running or waiting; changed on the event loop only
        self._refused = 0

    @classmethod
    def for_portal(cls, settings: Settings) -> AnalysisLane:
        """The public portal's lane: FACETRACE_PORTAL_ANALYSIS_CONCURRENCY and FACETRACE_PORTAL_QUEUE."""
        return cls(
            "portal",
            settings,
            concurrency=settings.portal_analysis_concurrency,
            queue_size=settings.portal_queue,
        )

    async def run(self, work: Callable[[FaceAnalyzer], Result]) -> Result:
        """``work(analyzer)`` on one of the lane's threads with one of its analyzers, once one is free;
        :class:`BusyError` at once when as many are running and waiting as the lane holds."""
        if self._admitted >= self._capacity:
            self._refused += 1
            raise BusyError(
                "too many photos are being analysed right now: please try again in a minute",
                retry_after_s=RETRY_AFTER_S,
            )
        self._admitted += 1
        try:
            return await anyio.to_thread.run_sync(self._with_analyzer, work, limiter=self._limiter)
        finally:
            self._admitted -= 1

    def _with_analyzer(self, work: Callable[[FaceAnalyzer], Result]) -> Result:
        try:
            analyzer = self._idle.get_nowait()
        except queue.Empty:
            analyzer = build_analyzer(self._settings)
        try:
            return work(analyzer)
        finally:
            self._idle.put(analyzer)

    def collect(self) -> Iterator[Metric]:
        running = int(self._limiter.borrowed_tokens)
        photos = GaugeMetricFamily(
            "facetrace_analysis_lane_photos",
            "Photos in an analysis lane of their own (the public portal's), by state.",
            labels=["lane", "state"],
        )
        photos.add_metric([self.name, "running"], running)
        photos.add_metric([self.name, "waiting"], max(0, self._admitted - running))
        yield photos
        refused = CounterMetricFamily(
            "facetrace_analysis_lane_refused",
            "Photos refused (503) because an analysis lane and its queue were full.",
            labels=["lane"],
        )
        refused.add_metric([self.name], self._refused)
        yield refused


class AnalysedPhoto(FaceAnalyzer):
    """One photo's analysis, made beforehand: handed back when that photo is analysed again.

    A caller that analyses a photo and then searches the gallery with it (the filing of a portal
    request) is given this, so that the costly part is done in the lane before the lock that
    searches share is taken, and only the gallery search runs under it.
    """

    def __init__(self, analyzer: FaceAnalyzer, photo: bytes, analysis: ImageAnalysis) -> None:
        super().__init__(analyzer.detector, analyzer.embedder, max_pixels=0, max_bytes=0)
        self._photo = photo
        self._analysis = analysis

    def analyze(self, data: bytes) -> ImageAnalysis:
        if data != self._photo:
            raise ValueError("this analysis is of another photo")
        return self._analysis
