"""A lane of face analysis with its own analyzers and its own limits, for photos from anonymous senders.

The public portal's photos are decoded and analysed here, never by the analyzers investigators'
searches check out (:mod:`facetrace.vision.analyzer_pool`): whatever the portal is sent, a search
does not queue behind it.

At most ``concurrency`` photos are worked on at once, each on one of the lane's own worker threads
(so neither the server's event loop nor the thread pool every other route runs in is held by them),
which run below the server's other threads in CPU priority: on a busy machine the kernel gives
searches the processor first. At most ``queue`` more wait. Past that, :meth:`AnalysisLane.run`
refuses at once with :class:`~facetrace.core.errors.BusyError` (503 with ``Retry-After``), before a byte
is decoded: the refusal depends on the load alone, never on what the photo shows.

The lane's state is on /metrics: ``facetrace_analysis_lane_photos{lane, state="running"|"waiting"}``
and ``facetrace_analysis_lane_refused_total{lane}``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from facetrace.core.config import Settings
from facetrace.core.errors import BusyError

if TYPE_CHECKING:
    from facetrace.vision.analyzer import FaceAnalyzer

Result = TypeVar("Result")

#: Seconds a refused sender is told to wait: the same whatever the load, so it says nothing more.
RETRY_AFTER_S = 30
#: How far below the server's other threads the lane's workers run (nice values, Linux).
NICENESS = 10


class AnalysisLane(Collector):
    """Photos analysed ``concurrency`` at a time by analyzers of the lane's own, ``queue`` more waiting."""

    def __init__(
        self, name: str, build: Callable[[], FaceAnalyzer], *, concurrency: int, queue_size: int
    ) -> None:
        self.name = name
        self._build = build
        self._concurrency = concurrency
        self._capacity = concurrency + queue_size
        self._workers = ThreadPoolExecutor(
            concurrency, thread_name_prefix=f"{name}-analysis", initializer=_below_other_threads
        )
        self._analyzers = threading.local()  # each worker's own, built for its first photo
        self._admitted = 0  # running or waiting; changed on the event loop only
        self._refused = 0

    @classmethod
    def for_portal(cls, settings: Settings, build: Callable[[], FaceAnalyzer]) -> AnalysisLane:
        """The public portal's lane, of analyzers ``build`` makes: FACETRACE_PORTAL_ANALYSIS_CONCURRENCY
        and FACETRACE_PORTAL_QUEUE."""
        return cls(
            "portal",
            build,
            concurrency=settings.portal_analysis_concurrency,
            queue_size=settings.portal_queue,
        )

    async def run(self, work: Callable[[FaceAnalyzer], Result]) -> Result:
        """``work(analyzer)`` on one of the lane's workers with its analyzer, once one is free;
        :class:`BusyError` at once when as many are running and waiting as the lane holds."""
        if self._admitted >= self._capacity:
            self._refused += 1
            raise BusyError(
                "too many photos are being analysed right now: please try again in a minute",
                retry_after_s=RETRY_AFTER_S,
            )
        loop = asyncio.get_running_loop()
        self._admitted += 1
        done = self._workers.submit(self._with_analyzer, work)
        # Counted out when the work ends, not when its caller stops waiting (a worker may still run it).
        done.add_done_callback(lambda _: loop.is_closed() or loop.call_soon_threadsafe(self._leave))
        return await asyncio.wrap_future(done)

    def _leave(self) -> None:
        self._admitted -= 1

    def _with_analyzer(self, work: Callable[[FaceAnalyzer], Result]) -> Result:
        if not hasattr(self._analyzers, "analyzer"):
            self._analyzers.analyzer = self._build()
        return work(self._analyzers.analyzer)

    def close(self) -> None:
        """Drop the photos still waiting and let the workers end (the running ones finish)."""
        self._workers.shutdown(wait=False, cancel_futures=True)

    def collect(self) -> Iterator[Metric]:
        running = min(self._admitted, self._concurrency)
        photos = GaugeMetricFamily(
            "facetrace_analysis_lane_photos",
            "Photos in an analysis lane of their own (the public portal's), by state.",
            labels=["lane", "state"],
        )
        photos.add_metric([self.name, "running"], running)
        photos.add_metric([self.name, "waiting"], self._admitted - running)
        yield photos
        refused = CounterMetricFamily(
            "facetrace_analysis_lane_refused",
            "Photos refused (503) because an analysis lane and its queue were full.",
            labels=["lane"],
        )
        refused.add_metric([self.name], self._refused)
        yield refused


def _below_other_threads() -> None:
    """Lower the calling worker thread's CPU priority (Linux keeps a nice value per thread; elsewhere
    the whole process would be lowered, so it is left as it is)."""
    if sys.platform == "linux":
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + NICENESS))
