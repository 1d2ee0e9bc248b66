"""Building a gallery the way a deployment does, without a registered source or an actor: the
ingest library with the deployment's collection rules (do-not-collect list, erasures)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from facetrace.core.config import Settings
from facetrace.governance.collection_policy import GovernedCollection
from facetrace.ingest import pipeline
from facetrace.ingest.inputs import FetchedImage, InputImage, InputProblem
from facetrace.ingest.pipeline import IngestStats


def ingest(settings: Settings, arguments: Sequence[str], **options: Any) -> IngestStats:
    """:func:`facetrace.ingest.pipeline.ingest` under the deployment's collection rules."""
    return pipeline.ingest(settings, arguments, policy=GovernedCollection(settings), **options)


def ingest_items(
    settings: Settings, items: Iterable[InputImage | InputProblem | FetchedImage], **options: Any
) -> IngestStats:
    """:func:`facetrace.ingest.pipeline.ingest_items` under the deployment's collection rules."""
    return pipeline.ingest_items(settings, items, policy=GovernedCollection(settings), **options)
