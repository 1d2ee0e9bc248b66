"""Fixed-size codes, one row per face, in a file of their own that searches read memory-mapped.

The 8-bit codes are most of a compressed index (128 of its ~180 B per face at 128-d). Kept in
a file and mapped, they cost page cache rather than the process's own memory, so the gallery
is not capped by RAM, and the processes reading them share the pages.

Rows only grow and never move (the IVF lists refer to them by number). Rows added to a store
opened from a saved index stay in memory until :meth:`commit` writes them after the rows
already there: only a writer, holding the gallery's write lock, commits, while a searching
process may add the faces it catches up on without touching the file other processes read.
A store made for a new index (a rebuild) owns a new file that nobody reads yet, and writes
its rows there straight away. The index file written after :meth:`commit` names this file and
its row count, and is the commit point. :meth:`zero` overwrites rows in the file itself, which
is what erasure needs.

A search reads about a thousand rows from anywhere in the file. The map therefore reads only the
pages asked for (``MADV_RANDOM``): by default the kernel reads ahead around each (8 MB on this
machine), and at 100M faces, whose 12.8 GB of codes the page cache had not yet taken in, a
search's thousand rows took 0.1 to 2.4 s; read page by page, a hundred cold rows take about 7 ms
(``bench/mapped_reads.py``). :meth:`warm` reads the file in order once, so that the page cache
holds it before the searches need it.
"""

from __future__ import annotations

import logging
import mmap
import os
from pathlib import Path

import numpy as np

#: :meth:`CodeStore.warm` reads a file only if it takes at most this share of the machine's
#: memory: a larger one cannot stay in the page cache, and reading it would only push out pages
#: that could (100M faces' codes are 12.8 GB, on 24 GiB).
WARM_MAX_SHARE_OF_MEMORY = 0.75
#: :meth:`CodeStore.warm` reads this many bytes at a time.
WARM_CHUNK = 16 * 2**20

log = logging.getLogger(__name__)


def map_without_read_ahead(
    path: Path, shape: tuple[int, ...], dtype: np.dtype | type, *, offset: int = 0, writable: bool = False
) -> np.ndarray:
    """``shape`` rows of ``dtype`` from byte ``offset`` of the file at ``path``, through a map that
    reads only the pages asked for (``MADV_RANDOM``, see the module's docstring). The array's
    ``base`` is the map; a ``writable`` one writes through to the file."""
    with path.open("r+b" if writable else "rb") as file:
        mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ)
    mapping.madvise(mmap.MADV_RANDOM)
    return np.ndarray(shape, dtype, buffer=mapping, offset=offset)


def with_room(buffer: np.ndarray, used: int, needed: int, fill: int = 0) -> np.ndarray:
    """``buffer`` if it holds ``needed`` rows, else a copy of its first ``used`` rows in one at
    least twice as long (the rest ``fill``): appends of one image's faces must not copy them all."""
    if needed <= len(buffer):
        return buffer
    grown = np.full((max(needed, 2 * len(buffer), 1024), *buffer.shape[1:]), fill, dtype=buffer.dtype)
    grown[:used] = buffer[:used]
    return grown


class CodeStore:
    """``rows`` committed rows of ``width`` bytes in the file at ``path`` (created if missing),
    and the rows added since; ``owned``: the file is new, and nobody else reads it."""

    def __init__(self, path: Path, width: int, rows: int = 0, *, owned: bool = False) -> None:
        self.path = path
        self.width = width
        self._owned = owned
        self._in_file = rows
        self._added = np.empty((0, width), dtype=np.uint8)  # rows kept in memory (capacity grows)
        self._added_rows = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
        self._map()

    def _map(self) -> None:
        """Map the rows in the file (a map cannot grow: writing rows maps the file again)."""
        if self._in_file:
            shape = (self._in_file, self.width)
            self._mapped = map_without_read_ahead(self.path, shape, np.uint8, writable=True)
        else:
            self._mapped = np.zeros((0, self.width), dtype=np.uint8)

    def __len__(self) -> int:
        return self._in_file + self._added_rows

    def append(self, codes: np.ndarray) -> None:
        codes = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1, self.width)
        if self._owned:
            self._write_after_file_rows(codes)
            return
        end = self._added_rows + len(codes)
        self._added = with_room(self._added, self._added_rows, end)
        self._added[self._added_rows : end] = codes
        self._added_rows = end

    def rows(self, numbers: np.ndarray) -> np.ndarray:
        """The rows numbered ``numbers``, as a new array."""
        numbers = np.asarray(numbers, dtype=np.int64)
        if not self._added_rows or not len(numbers) or numbers.max() < self._in_file:
            return np.asarray(self._mapped[numbers])
        out = np.empty((len(numbers), self.width), dtype=np.uint8)
        in_file = numbers < self._in_file
        out[in_file] = self._mapped[numbers[in_file]]
        out[~in_file] = self._added[numbers[~in_file] - self._in_file]
        return out

    def all(self) -> np.ndarray:
        """Every row, the file read in order rather than page by page through the map."""
        in_file = np.fromfile(self.path, dtype=np.uint8, count=self._in_file * self.width)
        return np.vstack([in_file.reshape(-1, self.width), self._added[: self._added_rows]])

    def warm(self) -> None:
        """Read the file once, in order, into the page cache (unless it is too large to stay
        there, see :data:`WARM_MAX_SHARE_OF_MEMORY`). Only a speed-up: a failure is logged."""
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        try:
            if self.path.stat().st_size > WARM_MAX_SHARE_OF_MEMORY * memory:
                return
            chunk = bytearray(WARM_CHUNK)
            with self.path.open("rb", buffering=0) as file:
                while file.readinto(chunk):
                    pass
        except OSError as error:
            log.info("the codes in %s were not read ahead: %s", self.path, error)

    def zero(self, rows: np.ndarray) -> None:
        """Overwrite ``rows`` with zeros: in the file for rows there, in memory for the others."""
        rows = np.asarray(rows, dtype=np.int64)
        in_file = rows[rows < self._in_file]
        if len(in_file):
            self._mapped[in_file] = 0
            mapping = self._mapped.base  # rows in the file are mapped
            assert isinstance(mapping, mmap.mmap)
            mapping.flush()
        self._added[rows[rows >= self._in_file] - self._in_file] = 0

    def commit(self) -> None:
        """Write the rows added since, make the file durable, and cut off what an append that was
        never committed left past its rows."""
        self._write_after_file_rows(self._added[: self._added_rows])
        self._added_rows = 0
        with self.path.open("r+b") as file:
            file.truncate(self._in_file * self.width)
            os.fsync(file.fileno())

    def _write_after_file_rows(self, codes: np.ndarray) -> None:
        if not len(codes):
            return
        with self.path.open("r+b") as file:
            file.seek(self._in_file * self.width)
            file.write(codes.tobytes())
        self._in_file += len(codes)
        self._map()
