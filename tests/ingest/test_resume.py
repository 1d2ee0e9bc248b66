"""kill -9 in the middle of an ingest, then run it again: nothing lost, nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from facetrace.catalog.repository import face_ids
from facetrace.core.config import Settings
from facetrace.gallery.gallery import Gallery
from facetrace.index.faiss_files import open_faiss_index
from support.catalogs import catalog_rows, images_in_catalog
from support.ingesting import ingest
from support.photos import IMAGES, distinct_photos


@pytest.mark.slow
def test_killed_ingest_resumes_without_duplicates_or_gaps(tmp_path: Path, astronaut_rgb: np.ndarray) -> None:
    photos = tmp_path / "photos"
    distinct_photos(photos, astronaut_rgb)
    data_dir = tmp_path / "var"
    command = [sys.executable, "-m", "facetrace", "--data-dir", str(data_dir)]
    legal = ["--legal-basis", "Art. 6(1)(e) GDPR, test archive", "--jurisdiction", "FR"]
    subprocess.run([*command, "source", "add", "crops", *legal], check=True, capture_output=True)
    command += ["ingest", str(photos), "--source", "crops", "--workers", "2"]
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    settings = Settings(data_dir=data_dir, workers=2)  # the same catalog as the process's
    deadline = time.monotonic() + 300
    while images_in_catalog(settings) < 20 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the ingest and its workers, mid-flight
    process.wait()
    stored_before = images_in_catalog(settings)
    assert 20 <= stored_before < IMAGES, "the kill should land in the middle of the run"

    stats = ingest(settings, [str(photos)], source_name="crops")
    assert stats.known_images == stored_before
    assert stats.new_images == IMAGES - stored_before
    assert not stats.failures

    [(images, distinct)] = catalog_rows(settings, "SELECT count(*), count(DISTINCT sha256) FROM images")
    [(sightings,)] = catalog_rows(settings, "SELECT count(*) FROM sightings")
    [(declared, stored)] = catalog_rows(
        settings, "SELECT (SELECT sum(face_count) FROM images), (SELECT count(*) FROM faces)"
    )
    assert images == distinct == sightings == IMAGES
    assert declared == stored == IMAGES  # one face per crop, none lost, none twice

    # The index file saved at the end holds exactly the catalog's faces.
    model_id, dim = "sface-2021dec@0ba9fbfa01b5", 128
    on_disk = open_faiss_index(settings.index_dir, model_id, dim)
    with Gallery.open(settings, model_id, dim).sessions() as session:
        assert sorted(on_disk.ids().tolist()) == face_ids(session, model_id).tolist()
