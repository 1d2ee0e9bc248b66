"""Searches over HTTP analyse their probes at once, each with an analyzer of the pool's
(FACETRACE_ANALYZERS), and search the gallery without waiting for one another."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from facetrace.core.config import Settings
from facetrace.vision.analyzer import FaceAnalyzer, ImageAnalysis
from support.api import ADMIN_PASSWORD, PURPOSE, serving_api
from support.ingesting import ingest

#: How long an analysis waits for the other search's: a guard against a hang, not a bound on any latency.
PATIENCE_S = 30.0


def meeting_at(
    barrier: threading.Barrier, analyze: Callable[..., ImageAnalysis]
) -> Callable[..., ImageAnalysis]:
    """``analyze`` that starts only once ``barrier``'s other parties are analysing too: two searches
    get through only if their analyses overlap (one at a time, the first waits in vain and fails)."""

    def analyze_when_met(analyzer: FaceAnalyzer, data: bytes) -> ImageAnalysis:
        barrier.wait(timeout=PATIENCE_S)
        return analyze(analyzer, data)

    return analyze_when_met


def test_two_searches_analyse_their_probes_at_once(
    tmp_path: Path, photo_folder: Path, astronaut_jpeg: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path / "var", workers=1, admin_password=ADMIN_PASSWORD, analyzers=2)
    ingest(settings, [str(photo_folder)], source_name="press")
    with serving_api(settings) as api:
        investigators = [api.as_role("investigator") for _ in range(2)]
        monkeypatch.setattr(FaceAnalyzer, "analyze", meeting_at(threading.Barrier(2), FaceAnalyzer.analyze))

        def search(client: httpx.Client) -> httpx.Response:
            return client.post(
                "/api/v1/search", data=PURPOSE, files={"photo": ("probe.jpg", astronaut_jpeg, "image/jpeg")}
            )

        with ThreadPoolExecutor(2) as threads:
            responses = list(threads.map(search, investigators))

    for response in responses:
        assert response.status_code == 200, response.text
        assert [hit["score"] > 0.9 for hit in response.json()["results"]] == [True]
