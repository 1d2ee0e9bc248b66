"""Access reports (GDPR art. 15) as files: written for the DPO and the person, kept for a while, deleted.

A report lists what the gallery holds about someone, so it is as private as the gallery: its file is
created 0600 in a folder 0700, read back only through the governance layer (the DPO, or the
person with the request's reference and code), and deleted FACETRACE_RIGHTS_REPORT_DAYS after it
was written (see :meth:`RightsService.rights_housekeeping`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel

from facetrace.core.atomic import atomic_path
from facetrace.core.config import Settings
from facetrace.gallery.results import Sighting

FILE_MODE = 0o600
FOLDER_MODE = 0o700


class HeldImage(BaseModel):
    """A face the gallery holds of the person, its image, and every place the image was seen (as a
    search result lists them)."""

    face_id: int
    image_sha256: str
    first_seen: str
    last_seen: str
    seen_at: list[Sighting]


class AccessReport(BaseModel):
    request: str
    generated_at: str
    faces_held: int
    images: list[HeldImage]


def path(settings: Settings, reference: str) -> Path:
    return settings.data_dir / "rights" / f"{reference}-access.json"


def write(settings: Settings, reference: str, report: AccessReport) -> Path:
    target = path(settings, reference)
    target.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    target.parent.chmod(FOLDER_MODE)  # an older version may have made it with wider permissions
    with atomic_path(target) as temporary:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False))
    return target


def read(settings: Settings, reference: str) -> bytes | None:
    """The report's bytes, None once it has been deleted."""
    try:
        return path(settings, reference).read_bytes()
    except FileNotFoundError:
        return None


def delete(settings: Settings, reference: str) -> bool:
    """Delete the report; False if it was already gone."""
    try:
        path(settings, reference).unlink()
    except FileNotFoundError:
        return False
    return True
