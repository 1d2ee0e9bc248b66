"""What an ingest must leave out, as a protocol: the ingest applies the rules, the layer above
(governance) decides them. The ingest never imports governance; whoever starts one hands it a
:class:`CollectionPolicy`."""

from __future__ import annotations

from typing import Protocol

import numpy as np
from sqlalchemy.orm import Session

from facetrace.store.catalog_models import Source


class CollectionRules(Protocol):
    """The rules of one ingest: fixed when it begins, except erasures, which it catches up with."""

    def blocks_place(self, location: str, page_url: str | None) -> str | None:
        """The rule ("url", "domain") that keeps an image seen at ``location`` from being read."""
        ...

    def blocks_face(self, embedding: np.ndarray) -> bool:
        """Whether a face with this template may not be stored."""
        ...

    def catch_up(self, session: Session) -> None:
        """Take in the erasures committed since the last call (under the gallery's write lock)."""
        ...

    def covers(self, sha256: str, *places: str | None) -> bool:
        """Whether an erasure since the ingest began deleted these bytes or what was seen there."""
        ...


class CollectionPolicy(Protocol):
    """Hands each ingest its rules."""

    def rules_for(self, session: Session, source: Source, model_id: str, dim: int) -> CollectionRules:
        """The rules for an ingest into ``source`` by a model of ``model_id``/``dim``; raises
        :class:`~facetrace.core.errors.FacetraceError` when nothing may be collected from it."""
        ...
