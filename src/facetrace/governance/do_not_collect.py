"""The do-not-collect list, as ingest applies it.

URL prefixes and domains stop an image from being read at all; a purged jurisdiction
stops any source of that country from collecting. A template (kept
only with the person's explicit consent, and only for this) drops any face that
matches it above the strict subject threshold before anything is stored, once the
DPO has verified and executed the objection that asked for it: inactive entries block nothing.
Ingest counts what each rule stopped (:class:`facetrace.ingest.pipeline.IngestStats`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from facetrace.core.errors import FacetraceError
from facetrace.store.governance_models import DoNotCollect


@dataclass(frozen=True, slots=True)
class CollectionBlocks:
    url_prefixes: tuple[str, ...]
    domains: frozenset[str]
    jurisdictions: frozenset[str]  # purged: no source of these countries collects again
    templates: np.ndarray  # (n, dim) unit rows of the ingesting model
    threshold: float

    def blocks_place(self, location: str, page_url: str | None) -> str | None:
        """The rule that keeps an image seen at ``location`` (on ``page_url``) from being read:
        "url" or "domain"; None if none does."""
        for url in (location, page_url):
            if not url:
                continue
            if url.startswith(self.url_prefixes):
                return "url"
            host = (urlparse(url).hostname or "").lower()
            if host and any(host == d or host.endswith("." + d) for d in self.domains):
                return "domain"
        return None

    def blocks_face(self, embedding: np.ndarray) -> bool:
        return bool(len(self.templates)) and float(np.max(self.templates @ embedding)) >= self.threshold


def load(session: Session, model_id: str, dim: int, threshold: float) -> CollectionBlocks:
    entries = list(session.scalars(select(DoNotCollect).where(DoNotCollect.active)))
    templates = [
        np.frombuffer(e.template, dtype=np.float32)
        for e in entries
        if e.kind == "template" and e.model_id == model_id and e.template is not None
    ]
    return CollectionBlocks(
        url_prefixes=tuple(e.value for e in entries if e.kind == "url" and e.value),
        domains=frozenset(e.value.lower() for e in entries if e.kind == "domain" and e.value),
        jurisdictions=frozenset(e.value for e in entries if e.kind == "jurisdiction" and e.value),
        templates=np.vstack(templates) if templates else np.empty((0, dim), np.float32),
        threshold=threshold,
    )


def refuse_source(blocks: CollectionBlocks, name: str, jurisdiction: str | None) -> None:
    if jurisdiction is not None and jurisdiction in blocks.jurisdictions:
        raise FacetraceError(
            f"source {name!r} is in {jurisdiction}, whose collection was purged and blocked; "
            "nothing is collected from that jurisdiction any more"
        )
