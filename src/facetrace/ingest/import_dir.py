"""Folder imports started over HTTP, confined to the one folder ``FACETRACE_IMPORT_DIR`` names.

``facetrace ingest PATH`` reads whatever its operator may read on their own machine. A request to
the server is different: it must never make the server read a path it names (``../../etc``, a
link to another tenant's photos). So a request names a folder *inside* the import folder, and
every file found there is read only if it really lies inside it once links are followed.
"""

from __future__ import annotations

from pathlib import Path

from facetrace.config import Settings
from facetrace.errors import FacetraceError, NotFoundError
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
    return [_confined(item, root) for item in expand_inputs([str(target)])]


def _confined(item: InputImage | InputProblem, root: Path) -> InputImage | InputProblem:
    if isinstance(item, InputImage) and not item.path.resolve().is_relative_to(root):
        return InputProblem(item.location, "a link to a file outside the import folder: not read")
    return item
