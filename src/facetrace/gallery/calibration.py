"""Honest scores: how often two *different* people score this high, measured on real impostor pairs.

This module holds the curve a search reads and the catalog rows it is kept in; measuring one is
:mod:`facetrace.evaluation.calibration`'s job. A calibration embeds a labelled folder with the real
pipeline, scores every pair of images of different people (distractors are all different people),
and keeps, on a
fixed grid of scores, how many impostor pairs reach each score. For a result with
score ``s`` in a gallery of ``G`` faces, the expected number of false matches at
that score or above is ``FAR(s) × G``: a figure an investigator can weigh, where a
bare cosine similarity means nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from facetrace.store.catalog_models import Calibration

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


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    model_id: str
    dataset: str
    images: int
    images_with_face: int
    curve: ImpostorCurve


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
