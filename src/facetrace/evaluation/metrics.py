"""Accuracy measures over templates and pair scores; pure functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class IdentificationResult:
    probes: int
    rank1: float
    rank5: float


def leave_one_out_identification(
    embeddings: np.ndarray, labels: list[str | None], mated: np.ndarray, chunk: int = 1024
) -> IdentificationResult:
    """Each mated probe searched against everything else; the rank of its best true mate.

    ``embeddings`` (n×d, unit rows) are the gallery; ``labels`` name each row's
    identity (None: a distractor, never a mate). ``mated`` marks the probes: rows
    whose identity has another row. A probe with no face at all is the caller's
    to count as a miss.
    """
    codes = label_codes(labels)
    probe_rows = np.flatnonzero(mated)
    ranks = np.empty(len(probe_rows), dtype=np.int64)
    for start in range(0, len(probe_rows), chunk):
        rows = probe_rows[start : start + chunk]
        sims = embeddings[rows] @ embeddings.T
        sims[np.arange(len(rows)), rows] = -np.inf  # leave the probe itself out
        same = codes[rows][:, None] == codes[None, :]
        same[np.arange(len(rows)), rows] = False
        best_mate = np.where(same, sims, -np.inf).max(axis=1)
        ranks[start : start + chunk] = 1 + ((sims > best_mate[:, None]) & ~same).sum(axis=1)
    return IdentificationResult(
        probes=len(probe_rows),
        rank1=float(np.mean(ranks <= 1)) if len(ranks) else 0.0,
        rank5=float(np.mean(ranks <= 5)) if len(ranks) else 0.0,
    )


def label_codes(labels: list[str | None]) -> np.ndarray:
    """Integer identity codes; every distractor gets a code of its own (negative)."""
    names: dict[str, int] = {}
    return np.array(
        [
            names.setdefault(label, len(names)) if label is not None else -1 - i
            for i, label in enumerate(labels)
        ]
    )


def genuine_pairs(labels: list[str | None]) -> np.ndarray:
    """Every pair (i < j) of rows with the same identity, as an (m, 2) array."""
    by_identity: dict[str, list[int]] = {}
    for row, label in enumerate(labels):
        if label is not None:
            by_identity.setdefault(label, []).append(row)
    pairs = [(a, b) for rows in by_identity.values() for i, a in enumerate(rows) for b in rows[i + 1 :]]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def impostor_pairs(labels: list[str | None], count: int, seed: int = 0) -> np.ndarray:
    """A fixed random sample of ``count`` distinct pairs of rows with different identities."""
    codes = label_codes(labels)
    n = len(codes)
    rng = np.random.default_rng(seed)
    chosen: set[tuple[int, int]] = set()
    max_pairs = n * (n - 1) // 2
    while len(chosen) < min(count, max_pairs):
        a, b = rng.integers(0, n, size=(2, 2 * count))
        for i, j in zip(a.tolist(), b.tolist(), strict=True):
            if i != j and codes[i] != codes[j]:
                chosen.add((min(i, j), max(i, j)))
                if len(chosen) == count:
                    break
    return np.array(sorted(chosen), dtype=np.int64).reshape(-1, 2)


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> tuple[float, float]:
    """True-accept rate at the threshold where ``far`` of impostor scores pass; returns (TAR, threshold)."""
    if len(impostor) * far < 1:
        raise ValueError(f"{len(impostor)} impostor scores cannot resolve a FAR of {far}")
    threshold = float(np.quantile(impostor, 1 - far, method="higher"))
    return float(np.mean(genuine > threshold)), threshold


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold (accept when score > threshold) with the highest accuracy on these pairs."""
    order = np.argsort(scores, kind="stable")
    sorted_scores, sorted_same = scores[order], same[order].astype(bool)
    # Threshold just above position i rejects rows 0..i and accepts the rest:
    # errors = genuine rejected + impostors accepted.
    genuine_rejected = np.cumsum(sorted_same)
    impostors_accepted = (~sorted_same).sum() - np.cumsum(~sorted_same)
    errors = genuine_rejected + impostors_accepted
    # Only a cut between two different scores is a real threshold.
    valid = np.append(sorted_scores[1:] > sorted_scores[:-1], True)
    errors = np.where(valid, errors, np.iinfo(np.int64).max)
    best = int(np.argmin(errors))
    if (~sorted_same).sum() <= errors[best]:  # accepting everything is at least as good
        return float(sorted_scores[0] - 1e-6)
    upper = sorted_scores[best + 1] if best + 1 < len(sorted_scores) else sorted_scores[best] + 1e-6
    return float((sorted_scores[best] + upper) / 2)


@dataclass(frozen=True, slots=True)
class FoldedAccuracy:
    mean: float
    std: float
    threshold: float  # mean of the per-fold thresholds
    folds: list[float]


def k_fold_accuracy(scores: np.ndarray, same: np.ndarray, fold_of: np.ndarray) -> FoldedAccuracy:
    """LFW-style accuracy: each fold tested at the threshold that is best on all the other folds."""
    accuracies, thresholds = [], []
    for fold in np.unique(fold_of):
        test = fold_of == fold
        threshold = best_threshold(scores[~test], same[~test])
        accuracies.append(float(np.mean((scores[test] > threshold) == same[test])))
        thresholds.append(threshold)
    return FoldedAccuracy(
        mean=float(np.mean(accuracies)),
        std=float(np.std(accuracies)),
        threshold=float(np.mean(thresholds)),
        folds=accuracies,
    )
