"""Folder imports started over HTTP, confined to the one folder ``FACETRACE_IMPORT_DIR`` names.

``facetrace ingest PATH`` reads whatever its operator may read on their own machine. A request to
the server is different: it must never make the server read a path it names (``../../etc``, a
link to another tenant's photos). So a request names a folder *inside* the import folder, and
every file found there is read only if it really lies inside it once links are followed. The
listing resolves links once; the read then opens the resolved file from the import folder down
without following any link (:meth:`InputImage.read`), so what is swapped in after the listing
(a file or folder replaced by a link out) is refused rather than read.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError, NotFoundError
from facetrace.ingest.inputs import InputImage, InputProblem, expand_inputs


def images_in_import_dir(settings: Settings, folder: str) -> list[InputImage | InputProblem]:
    """Every image under ``folder`` (relative to the import folder; '' or '.': all of it)."""
    if settings.import_dir is None:
        raise FacetraceError(
            "folder imports through the server are off: set FACETRACE_IMPORT_DIR to the folder "
            "they may read (or run 'facetrace ingest PATH' on the server)"
        )
    root = settings.import_dir.resolve()
    try:
        target = (root / folder).resolve()
    except (OSError, ValueError) as exc:  # a NUL byte, a link loop
        raise FacetraceError(f"{folder!r} is not a usable folder name ({exc})") from exc
    if not target.is_relative_to(root):
        raise FacetraceError(f"{folder!r} is outside the import folder: only folders inside it are read")
    if not target.is_dir():
        raise NotFoundError(f"no folder {folder!r} in the import folder")
    listed = expand_inputs([str(target)], max_bytes=settings.max_image_bytes)
    return [_confined(item, root) for item in listed]


def _confined(item: InputImage | InputProblem, root: Path) -> InputImage | InputProblem:
    """The item read from the file it resolves to now, beneath ``root`` and through no link."""
    if not isinstance(item, InputImage):
        return item
    resolved = item.path.resolve()
    if not resolved.is_relative_to(root):
        return InputProblem(item.location, "a link to a file outside the import folder: not read")
    return replace(item, path=resolved, within=root)
