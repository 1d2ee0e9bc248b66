"""The deployment's collection rules, handed to every ingest: the do-not-collect list as it stood
when the ingest began, and the erasures committed while it runs
(:mod:`facetrace.ingest.collection_policy`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from facetrace.core.config import Settings
from facetrace.governance import do_not_collect
from facetrace.governance.do_not_collect import CollectionBlocks
from facetrace.governance.erasure import ErasureWatch
from facetrace.store.catalog_models import Source


@dataclass(frozen=True, slots=True)
class GovernedRules:
    """One ingest's rules: the do-not-collect list and the erasure watch."""

    blocks: CollectionBlocks
    erasures: ErasureWatch

    def blocks_place(self, location: str, page_url: str | None) -> str | None:
        return self.blocks.blocks_place(location, page_url)

    def blocks_face(self, embedding: np.ndarray) -> bool:
        return self.blocks.blocks_face(embedding)

    def catch_up(self, session: Session) -> None:
        self.erasures.catch_up(session)

    def covers(self, sha256: str, *places: str | None) -> bool:
        return self.erasures.covers(sha256, *places)


@dataclass(frozen=True, slots=True)
class GovernedCollection:
    """The :class:`~facetrace.ingest.collection_policy.CollectionPolicy` of a deployment."""

    settings: Settings

    def rules_for(self, session: Session, source: Source, model_id: str, dim: int) -> GovernedRules:
        blocks = do_not_collect.load(session, model_id, dim, self.settings.subject_match_threshold)
        do_not_collect.refuse_source(blocks, source.name, source.jurisdiction)
        return GovernedRules(blocks, ErasureWatch(self.settings, session))
