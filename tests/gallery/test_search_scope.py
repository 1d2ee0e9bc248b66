"""Searches narrowed to sources and jurisdictions: what they show, how they are recorded, and the
exact pre-filter for a scope too narrow for the index's nearest candidates.

Runs on SQLite and PostgreSQL (``gov_settings`` in support/catalogs.py). The gallery (``two_people``):
the astronaut seen by press-fr (FR) and press-us (US), her mirror image by press-us only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from facetrace.catalog.scope import SearchScope
from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError
from facetrace.gallery import gallery as gallery_module
from facetrace.gallery.gallery import Gallery, Hit
from facetrace.governance.searches import Purpose
from facetrace.governance.service import Governance
from facetrace.index.kinds import IndexKind
from facetrace.store.governance_models import AuditEntry
from facetrace.vision.analyzer import FaceAnalyzer

PURPOSE = Purpose("CASE-7", "missing-person", "only what the French press published")


def places(hits: list[Hit]) -> list[tuple[str, list[str]]]:
    """Each result's photo (by file name) and the sources of the sightings it shows."""
    return [
        (
            Path(hit.face.image.sightings[0].location).name,
            sorted(s.source.name for s in hit.face.image.sightings),
        )
        for hit in hits
    ]


@pytest.fixture
def probe(analyzer: FaceAnalyzer, two_people: dict[str, Path]) -> np.ndarray:
    return analyzer.analyze(two_people["fr"].read_bytes()).faces[0].embedding


@pytest.mark.slow
def test_a_scope_shows_only_faces_and_sightings_of_its_sources(
    gov_settings: Settings, analyzer: FaceAnalyzer, two_people: dict[str, Path], probe: np.ndarray
) -> None:
    gallery = Gallery.open(gov_settings, analyzer.model_id, analyzer.embedder.dim)
    assert places(gallery.search(probe, 5)) == [
        ("astronaut.jpg", ["press-fr", "press-us"]),
        ("mirrored.jpg", ["press-us"]),
    ]
    assert places(gallery.search(probe, 5, SearchScope.of(["press-fr"]))) == [("astronaut.jpg", ["press-fr"])]
    in_us = gallery.search(probe, 5, SearchScope.of(jurisdictions=["us"]))  # codes in any case
    assert places(in_us) == [("astronaut.jpg", ["press-us"]), ("mirrored.jpg", ["press-us"])]
    # Both: the sources that match both, here none; and a country no source is in.
    assert gallery.search(probe, 5, SearchScope.of(["press-fr"], ["US"])) == []
    assert gallery.search(probe, 5, SearchScope.of(jurisdictions=["DE"])) == []

    gallery.rebuild(IndexKind.IVF_PQ)  # the compressed index's candidates, re-ranked exactly
    assert gallery.index.approximate
    assert places(gallery.search(probe, 5, SearchScope.of(["press-us"]))) == places(in_us)


def test_a_scope_with_a_typo_is_refused_rather_than_found_empty(
    gov_settings: Settings, analyzer: FaceAnalyzer, two_people: dict[str, Path], probe: np.ndarray
) -> None:
    gallery = Gallery.open(gov_settings, analyzer.model_id, analyzer.embedder.dim)
    with pytest.raises(FacetraceError, match="no source named press-frr"):
        gallery.search(probe, 5, SearchScope.of(["press-fr", "press-frr"]))
    with pytest.raises(FacetraceError, match="two-letter country code"):
        SearchScope.of(jurisdictions=["FRA"])


@pytest.mark.slow
def test_a_scope_the_nearest_candidates_miss_is_searched_exactly_within_its_sources(
    gov_settings: Settings,
    analyzer: FaceAnalyzer,
    two_people: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the index allowed one candidate only, the mirror image's nearest face (itself, seen by
    press-us) is out of a press-fr scope: the search must still find the press-fr face."""
    monkeypatch.setattr(gallery_module, "MOST_CANDIDATES", 1)
    gallery = Gallery.open(gov_settings, analyzer.model_id, analyzer.embedder.dim)
    mirrored = analyzer.analyze(two_people["us"].read_bytes()).faces[0].embedding
    assert places(gallery.search(mirrored, 1)) == [("mirrored.jpg", ["press-us"])]
    (hit,) = gallery.search(mirrored, 1, SearchScope.of(["press-fr"]))
    assert places([hit]) == [("astronaut.jpg", ["press-fr"])]
    assert 0 < hit.score < 0.99  # scored exactly against the other photo, not copied from the index


@pytest.mark.slow
def test_a_narrowed_search_is_recorded_with_its_scope(
    operator: Governance, analyzer: FaceAnalyzer, two_people: dict[str, Path]
) -> None:
    probe = two_people["fr"].read_bytes()
    outcome = operator.searches.search(
        analyzer, probe, PURPOSE, k=5, scope=SearchScope.of(jurisdictions=["FR"])
    )
    assert [hit.face.image.sightings[0].source.name for hit in outcome.hits] == ["press-fr"]
    assert operator.searches.scope_choices() == {
        "sources": ["press-fr", "press-us"],
        "jurisdictions": ["FR", "US"],
    }
    operator.searches.search(analyzer, probe, PURPOSE, k=5)
    with operator.sessions() as session:
        narrowed, whole = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(2)).all()[
            ::-1
        ]
    assert narrowed.details["scope"] == {"sources": [], "jurisdictions": ["FR"]}
    assert narrowed.result_face_ids == [outcome.hits[0].face.id]
    assert "scope" not in whole.details
