"""Honest scores: how often two *different* people score this high, measured on real impostor pairs.

A calibration embeds a labelled folder with the real pipeline, scores every pair of
images of different people (distractors are all different people), and keeps, on a
fixed grid of scores, how many impostor pairs reach each score. For a result with
score ``s`` in a gallery of ``G`` faces, the expected number of false matches at
that score or above is ``FAR(s) × G``: a figure an investigator can weigh, where a
bare cosine similarity means nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from facetrace.catalog.models import Calibration
from facetrace.config import Settings
from facetrace.errors import FacetraceError
from facetrace.evaluation.dataset import scan_labelled_folder
from facetrace.evaluation.metrics import label_codes
from facetrace.evaluation.runner import embed_images

GRID_START = -1.0
GRID_STEP = 0.005
GRID_POINTS = 401  # -1.0 … 1.0
#: Below this, FAR cannot be read finer than 1e-3: too coarse to say anything at gallery scale.
MIN_PAIRS = 1_000


@dataclass(frozen=True, slots=True)
class ImpostorCurve:
    """Counts of impostor pairs scoring at least each grid point; enough to read FAR anywhere."""

    pairs: int
    counts_at_least: list[int]
    grid_start: float = GRID_START
    grid_step: float = GRID_STEP

    def far(self, score: float) -> float:
        """Share of impostor pairs scoring at least ``score`` (read at the grid point just below:
        never an underestimate). Beyond the last impostor, the bound one pair would give."""
        position = int(np.floor((score - self.grid_start) / self.grid_step + 1e-9))
        position = min(max(position, 0), len(self.counts_at_least) - 1)
        return max(self.counts_at_least[position], 1) / self.pairs

    def expected_false_matches(self, score: float, gallery_size: int) -> float:
        return self.far(score) * gallery_size

    def score_at_far(self, far: float) -> float:
        """The lowest grid score whose FAR is at most ``far``."""
        for position, count in enumerate(self.counts_at_least):
            if count / self.pairs <= far:
                return round(self.grid_start + position * self.grid_step, 4)
        return 1.0


def impostor_curve(embeddings: np.ndarray, labels: list[str | None], chunk: int = 1024) -> ImpostorCurve:
    """Score every impostor pair (i < j, different identities) and count them on the grid."""
    codes = label_codes(labels)
    edges = GRID_START + GRID_STEP * np.arange(GRID_POINTS)
    histogram = np.zeros(GRID_POINTS + 1, dtype=np.int64)
    pairs = 0
    for start in range(0, len(embeddings), chunk):
        block = embeddings[start : start + chunk] @ embeddings.T
        rows = np.arange(start, start + len(block))[:, None]
        keep = (np.arange(len(embeddings))[None, :] > rows) & (codes[rows] != codes[None, :])
        scores = block[keep]
        pairs += len(scores)
        histogram += np.bincount(np.searchsorted(edges, scores, side="right"), minlength=GRID_POINTS + 1)
    # searchsorted(side="right") puts a score s in bin b with edges[b-1] <= s < edges[b]: the number
    # of scores >= edges[i] is the sum of bins i+1 and above.
    at_least = np.cumsum(histogram[::-1])[::-1][1:]
    return ImpostorCurve(pairs=pairs, counts_at_least=[int(c) for c in at_least])


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    model_id: str
    dataset: str
    images: int
    images_with_face: int
    curve: ImpostorCurve


def calibrate_folder(
    settings: Settings,
    root: Path,
    *,
    workers: int | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> CalibrationResult:
    images = scan_labelled_folder(root)
    if on_start:
        on_start(len(images))
    embedded = embed_images(settings, [i.path for i in images], workers=workers, on_progress=on_progress)
    found = embedded.has_face
    labels = [image.identity for image, f in zip(images, found, strict=True) if f]
    curve = impostor_curve(embedded.embeddings[found], labels)
    if curve.pairs < MIN_PAIRS:
        raise FacetraceError(
            f"{root} gives only {curve.pairs:,} impostor pairs; a calibration needs at least {MIN_PAIRS:,}"
        )
    return CalibrationResult(embedded.model_id, root.name, len(images), int(found.sum()), curve)


def store(session: Session, result: CalibrationResult) -> Calibration:
    row = Calibration(
        model_id=result.model_id,
        dataset=result.dataset,
        images=result.images_with_face,
        impostor_pairs=result.curve.pairs,
        grid_start=result.curve.grid_start,
        grid_step=result.curve.grid_step,
        counts_at_least=result.curve.counts_at_least,
    )
    session.add(row)
    session.flush()
    return row


def latest(session: Session, model_id: str) -> ImpostorCurve | None:
    """The model's newest calibration, or None when it was never calibrated."""
    row = session.scalar(
        select(Calibration).where(Calibration.model_id == model_id).order_by(Calibration.id.desc()).limit(1)
    )
    if row is None:
        return None
    return ImpostorCurve(row.impostor_pairs, list(row.counts_at_least), row.grid_start, row.grid_step)
