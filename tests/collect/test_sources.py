"""The source registry: what may be collected, from where; social networks refused; pause and remove.
SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from facetrace.collect.sources import SourceSpec, validate, within
from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError, PermissionDeniedError
from facetrace.governance.service import Governance
from facetrace.store.governance_models import AuditEntry
from support.api import staff_token
from support.ingesting import ingest

NEWS = SourceSpec(
    name="city-news",
    kind="website",
    legal_basis="Art. 6(1)(e) GDPR, public-interest archive",
    jurisdiction="fr",
    purpose="press photos of public events",
    seeds=("https://news.example/events/",),
    max_pages=500,
    rate_per_s=1.0,
)


def test_allowed_defaults_to_the_seeds_hosts_and_paths_are_prefixes() -> None:
    spec = validate(NEWS)
    assert spec.allowed == ("news.example",) and spec.jurisdiction == "FR"
    assert within("https://news.example/events/2026/a.jpg", ["news.example/events"])
    assert not within("https://news.example/private/a.jpg", ["news.example/events"])
    assert not within("https://evil.example/events/a.jpg", ["news.example"])
    assert not within("https://[news.example/events/a.jpg", ["news.example"])


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"seeds": ("https://www.facebook.com/some.person",)}, "social network"),
        (
            {"seeds": ("https://news.example/",), "allowed": ("news.example", "instagram.com")},
            "social network",
        ),
        ({"seeds": ()}, "needs at least one --seed"),
        ({"seeds": ("ftp://news.example/",)}, r"not an http\(s\) URL"),
        ({"seeds": ("https://[news.example/",)}, r"not an http\(s\) URL"),  # malformed: an IPv6 bracket
        ({"seeds": ("https://other.example/",), "allowed": ("news.example",)}, "outside the allowed"),
        ({"jurisdiction": "France"}, "two-letter country code"),
        ({"legal_basis": ""}, "legal basis is required"),
        ({"kind": "everything"}, "kind must be one of"),
    ],
)
def test_refusals(change: dict, refusal: str) -> None:
    fields = {name: getattr(NEWS, name) for name in NEWS.__dataclass_fields__}
    with pytest.raises(FacetraceError, match=refusal):
        validate(SourceSpec(**{**fields, **change}))


def test_register_pause_resume_remove(
    gov_settings: Settings, operator: Governance, tmp_path: Path, astronaut_jpeg: bytes
) -> None:
    added = operator.sources.add(NEWS)
    assert added.allowed == ["news.example"] and added.status == "active" and added.max_pages == 500
    with pytest.raises(FacetraceError, match="already exists"):
        operator.sources.add(NEWS)
    assert [s.name for s in operator.sources.listing()] == ["city-news"]

    photo = tmp_path / "a.jpg"
    photo.write_bytes(astronaut_jpeg)
    operator.sources.pause("city-news")
    with pytest.raises(FacetraceError, match="paused"):
        ingest(gov_settings, [str(photo)], source_name="city-news")
    operator.sources.pause("city-news", paused=False)
    ingest(gov_settings, [str(photo)], source_name="city-news")
    assert operator.sources.get("city-news").sightings == 1
    with pytest.raises(FacetraceError, match="a DPO erases them first"):
        operator.sources.remove("city-news")

    operator.sources.add(SourceSpec("empty", "local", "consent of the people pictured", "BE"))
    operator.sources.remove("empty")
    with operator.sessions() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("sources.%")).order_by(AuditEntry.id)
        ).all()
    assert actions == ["sources.add", "sources.pause", "sources.resume", "sources.add", "sources.remove"]


def test_only_an_admin_registers(gov_settings: Settings, operator: Governance) -> None:
    ivy = Governance.open(gov_settings, staff_token(gov_settings, operator, "ivy", ["investigator"]))
    with pytest.raises(PermissionDeniedError):
        ivy.sources.add(NEWS)
    assert ivy.sources.listing() == []  # reading the registry is open to every role
