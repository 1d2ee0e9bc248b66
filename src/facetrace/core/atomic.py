"""Replace files so that a crash leaves either the old or the new version, never half of one."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from facetrace.core.private_files import FILE_MODE, FOLDER_MODE


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; once the caller has written it, it replaces ``target``.

    The temporary file is flushed to disk before the rename and the directory after it,
    so the rename cannot land before the data. On error the temporary file is removed. The file
    is made owner-only (0600, its new folders 0700) before it replaces ``target``, whatever wrote it.
    """
    target.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        with temporary.open("rb+") as fh:
            os.fchmod(fh.fileno(), FILE_MODE)
            os.fsync(fh.fileno())
        temporary.replace(target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_text(target: Path, text: str) -> None:
    with atomic_path(target) as temporary:
        temporary.write_text(text)


def atomic_write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as temporary:
        temporary.write_bytes(data)
