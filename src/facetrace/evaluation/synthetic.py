"""Synthetic face templates shaped like real ones, to pad a gallery to benchmark size.

Uniform random unit vectors have no structure: every pair is nearly orthogonal
and no index behaves on them as it does on faces. Here the real templates'
mean and covariance are fitted and new vectors drawn from that Gaussian, then
L2-normalised, so their similarities to each other and to real faces follow
the real impostor distribution (``similarity_profile`` shows how closely).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TemplateModel:
    mean: np.ndarray
    cholesky: np.ndarray

    @classmethod
    def fit(cls, real: np.ndarray) -> TemplateModel:
        real = real.astype(np.float64)
        covariance = np.cov(real, rowvar=False) + 1e-6 * np.eye(real.shape[1])
        return cls(real.mean(axis=0), np.linalg.cholesky(covariance))

    def sample(self, count: int, seed: int = 0, chunk: int = 100_000) -> np.ndarray:
        rng = np.random.default_rng(seed)
        out = np.empty((count, len(self.mean)), dtype=np.float32)
        for start in range(0, count, chunk):
            n = min(chunk, count - start)
            draws = self.mean + rng.standard_normal((n, len(self.mean))) @ self.cholesky.T
            out[start : start + n] = draws / np.linalg.norm(draws, axis=1, keepdims=True)
        return out


def similarity_profile(
    a: np.ndarray, b: np.ndarray, labels: np.ndarray | None = None, pairs: int = 200_000, seed: int = 1
) -> dict[str, float]:
    """Cosine similarity between random rows of ``a`` and ``b``: mean, spread, upper tail.

    With ``labels`` (one per row of ``a``, with ``a is b``), pairs of the same identity
    are left out, so the profile is that of impostors only.
    """
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, len(a), pairs), rng.integers(0, len(b), pairs)
    keep = np.ones(pairs, dtype=bool) if a is not b else i != j
    if labels is not None:
        keep &= labels[i] != labels[j]
    sims = np.einsum("ij,ij->i", a[i[keep]], b[j[keep]])
    return {
        "mean": round(float(sims.mean()), 4),
        "std": round(float(sims.std()), 4),
        "p99": round(float(np.quantile(sims, 0.99)), 4),
        "p99.9": round(float(np.quantile(sims, 0.999)), 4),
    }
