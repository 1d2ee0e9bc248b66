"""Run a per-image task in worker processes that survive whatever the images do to them.

Each worker loads the models once (the initializer) and then handles one
image's bytes per call. Python-level errors come back as values. A worker that
dies in native code (a crash in a decoder, say) breaks the whole
``ProcessPoolExecutor``; the pool is then restarted and the jobs that were in
flight are retried one at a time, so the image that kills a worker is found,
reported as a failure, and nothing else is lost.

A worker dies with the process that started it: killed with ``kill -9``, a server leaves no worker
holding its models (hundreds of MiB) and waiting for work that will never come. On Linux the kernel
sees to it (``PR_SET_PDEATHSIG``); elsewhere a thread in the worker watches its parent.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Key = TypeVar("Key")

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_CHECK_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a job produced no result."""

    message: str


@dataclass(slots=True)
class _Job(Generic[Key]):
    key: Key
    data: bytes


class WorkerPool(Generic[Key]):
    """``map`` jobs ``(key, bytes)`` to ``(key, result | Failure)`` as they complete."""

    def __init__(
        self,
        task: Callable[[bytes], Any],
        *,
        workers: int,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
        in_flight_per_worker: int = 4,
    ) -> None:
        self._task = task
        self._workers = max(1, workers)
        self._initializer = initializer
        self._initargs = initargs
        self._limit = self._workers * in_flight_per_worker
        self._executor: ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        return self._workers

    def __enter__(self) -> WorkerPool[Key]:
        self._executor = self._new_executor()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _new_executor(self) -> ProcessPoolExecutor:
        # "spawn": workers start clean, without copies of the parent's open files,
        # database connections or threads.
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker_process,
            initargs=(os.getpid(), self._initializer, self._initargs),
        )

    def _submit(self, job: _Job[Key], pending: dict[Future[Any], _Job[Key]]) -> None:
        assert self._executor is not None
        try:
            future = self._executor.submit(self._task, job.data)
        except BrokenProcessPool as exc:  # the pool broke since the last wait: same as a crash
            future = Future()
            future.set_exception(exc)
        pending[future] = job

    def map(self, jobs: Iterable[tuple[Key, bytes]]) -> Iterator[tuple[Key, Any]]:
        if self._executor is None:
            raise RuntimeError("use WorkerPool as a context manager")
        source = iter(jobs)
        pending: dict[Future[Any], _Job[Key]] = {}
        suspects: deque[_Job[Key]] = deque()  # in flight when a worker died; retried one by one
        while True:
            isolating = bool(suspects)
            if isolating and not pending:
                self._submit(suspects.popleft(), pending)
            while not isolating and len(pending) < self._limit:
                job = next(source, None)
                if job is None:
                    break
                self._submit(_Job(*job), pending)
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            crashed = [pending.pop(f) for f in done if isinstance(f.exception(), BrokenProcessPool)]
            for future in done:
                if future in pending:
                    ended = pending.pop(future)
                    error = future.exception()
                    yield ended.key, Failure(f"{type(error).__name__}: {error}") if error else future.result()
            if crashed:
                if isolating:
                    yield crashed[0].key, Failure("the image crashed a worker process")
                else:
                    # Every job in flight is a suspect: let the rest fail too, then retry each alone.
                    crashed.extend(pending[f] for f in wait(pending).done)
                    pending.clear()
                    suspects.extend(crashed)
                assert self._executor is not None
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = self._new_executor()


def _start_worker_process(
    parent: int, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]
) -> None:
    """Every worker's initializer: tie its life to ``parent``'s, then run the pool's own."""
    die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


def die_with_parent(parent: int) -> None:
    """End this process as soon as ``parent`` (the process that started it) is gone.

    Linux: the kernel sends SIGKILL on the parent's death (``PR_SET_PDEATHSIG``, strictly: on the
    death of the parent's thread that started this process, the one that submits to the pool).
    The parent may have died before the request was made, so the parent is checked afterwards:
    if this process has been handed to another one already, it ends at once. Where ``prctl`` is
    missing, a daemon thread polls the parent's pid instead."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:
                os._exit(1)
            return
    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_INTERVAL_S)
    os._exit(1)  # no cleanup: nothing of the parent's work is left to hand back
