"""Measuring a calibration: embed a labelled folder with the real pipeline and count, on the grid of
:mod:`facetrace.gallery.calibration`, the impostor pairs reaching each score."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError
from facetrace.evaluation.dataset import scan_labelled_folder
from facetrace.evaluation.metrics import label_codes
from facetrace.evaluation.runner import embed_images
from facetrace.gallery.calibration import (
    GRID_POINTS,
    GRID_START,
    GRID_STEP,
    MIN_PAIRS,
    CalibrationResult,
    ImpostorCurve,
)


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
