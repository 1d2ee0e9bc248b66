"""Run a per-image task on Ray actors: the scale-out engine behind the same contract as
:class:`~facetrace.ingest.pool.WorkerPool`.

One actor per worker runs the initializer once (the models) and then handles one
image's bytes per call; the bytes travel as call arguments (Ray's object store),
never through files. Python-level errors come back as :class:`Failure` values. An
actor that dies in native code (a crash in a decoder, say, or the node's OOM killer)
fails every call it had in flight; a fresh actor takes its place and retries those
jobs one at a time, so the image that kills a worker is found, reported as a
failure, and nothing else is lost. Unlike a broken ``ProcessPoolExecutor``, the
other actors carry on meanwhile. Numpy arrays in the results come back read-only (views
of Ray's object store); ingest only reads them.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayActorError, RayTaskError

from facetrace.ingest.pool import Failure

Key = TypeVar("Key")


@ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)
class _Worker:
    """One worker process: the initializer once, then the task per call, one call at a time.

    ``num_cpus=1`` holds a core for the actor's lifetime (Ray's default holds none once an
    actor runs), so a cluster never packs more analysis processes on a node than it has cores.
    """

    def __init__(
        self, task: Callable[[bytes], Any], initializer: Callable[..., None] | None, initargs: tuple[Any, ...]
    ) -> None:
        self._task = task
        if initializer is not None:
            initializer(*initargs)

    def ready(self) -> None:
        """Returns once the initializer has run (raises its error if it failed)."""

    def run(self, data: bytes) -> Any:
        return self._task(data)


@dataclass(slots=True)
class _Slot(Generic[Key]):
    """One worker's place in the pool: its current actor, calls in flight, jobs to retry alone."""

    actor: ActorHandle[_Worker]
    in_flight: int = 0
    suspects: deque[tuple[Key, bytes]] = field(default_factory=deque)


@dataclass(frozen=True, slots=True)
class _Call(Generic[Key]):
    job: tuple[Key, bytes]
    slot: _Slot[Key]
    actor: ActorHandle[_Worker]  # the actor that got the call: the slot's may have been replaced since
    alone: bool  # a suspect retried by itself: if the actor dies now, this job killed it


class RayPool(Generic[Key]):
    """``map`` jobs ``(key, bytes)`` to ``(key, result | Failure)`` as they complete, on Ray actors.

    ``address``: None starts a local Ray instance (``workers`` CPUs, no dashboard) and shuts
    it down on exit; an address (``"auto"``, ``"ray://head:10001"``) connects to a running
    cluster and only disconnects on exit. A process already connected to Ray keeps its
    connection: the pool uses it and leaves it open.
    """

    def __init__(
        self,
        task: Callable[[bytes], Any],
        *,
        workers: int,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
        in_flight_per_worker: int = 4,
        address: str | None = None,
    ) -> None:
        self._task = task
        self._workers = max(1, workers)
        self._initializer = initializer
        self._initargs = initargs
        self._per_worker = max(1, in_flight_per_worker)
        self._address = address
        self._connected_here = False
        self._slots: list[_Slot[Key]] = []

    @property
    def workers(self) -> int:
        return self._workers

    def __enter__(self) -> RayPool[Key]:
        if not ray.is_initialized():
            self._connect()
        try:
            self._slots = [_Slot(self._new_actor()) for _ in range(self._workers)]
            # Wait for the models: an initializer that fails raises here, once, with its
            # traceback, instead of every image being reported as a crash.
            ray.get([slot.actor.ready.remote() for slot in self._slots])
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        for slot in self._slots:
            ray.kill(slot.actor)
        self._slots = []
        if self._connected_here:
            ray.shutdown()  # stops a local instance; only disconnects from a cluster
            self._connected_here = False

    def _connect(self) -> None:
        if self._address is None:
            # A private, throwaway instance: no usage report sent home, no dashboard.
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            ray.init(
                num_cpus=self._workers,
                include_dashboard=False,
                logging_level=logging.ERROR,
                log_to_driver=False,
            )
        else:
            ray.init(address=self._address, logging_level=logging.ERROR)
        self._connected_here = True

    def _new_actor(self) -> ActorHandle[_Worker]:
        # @ray.remote turns the class into an actor class, which Ray's typing leaves out.
        actor: ActorHandle[_Worker] = _Worker.remote(  # type: ignore[attr-defined]
            self._task, self._initializer, self._initargs
        )
        return actor

    def map(self, jobs: Iterable[tuple[Key, bytes]]) -> Iterator[tuple[Key, Any]]:
        if not self._slots:
            raise RuntimeError("use RayPool as a context manager")
        source = iter(jobs)
        pending: dict[ray.ObjectRef[Any], _Call[Key]] = {}

        def submit(job: tuple[Key, bytes], slot: _Slot[Key], *, alone: bool) -> None:
            pending[slot.actor.run.remote(job[1])] = _Call(job, slot, slot.actor, alone)
            slot.in_flight += 1

        while True:
            for slot in self._slots:
                if slot.suspects:  # wait for the dead actor's other calls to fail, then one by one
                    if not slot.in_flight:
                        submit(slot.suspects.popleft(), slot, alone=True)
                    continue
                while slot.in_flight < self._per_worker and (job := next(source, None)) is not None:
                    submit(job, slot, alone=False)
            if not pending:
                return
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            call = pending.pop(ready)
            call.slot.in_flight -= 1
            key = call.job[0]
            try:
                result = ray.get(ready)
            except RayTaskError as error:
                result = Failure(f"{type(error.cause).__name__}: {error.cause}")
            except RayActorError:
                if call.slot.actor is call.actor:  # the first of its calls to report the death
                    call.slot.actor = self._new_actor()
                if not call.alone:
                    call.slot.suspects.append(call.job)
                    continue
                result = Failure("the image crashed a worker process")
            yield key, result
