"""The VectorIndex contract, one suite run against every backend.

Milvus backends run on Milvus Lite (in-process, under ``tmp_path``) and are skipped when
pymilvus or milvus-lite is not installed; the FAISS backend always runs. Milvus Lite is slow
per call, so each test keeps to a few hundred vectors and one or two searches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pytest

from facetrace.core.errors import ModelMismatchError
from facetrace.index.base import VectorIndex
from facetrace.index.faiss_files import empty_faiss_index, open_faiss_index
from facetrace.index.faiss_index import index_file_for
from facetrace.index.kinds import IndexKind

# Never opens a catalog (the vector stores only): the --catalog postgres pass skips it.
pytestmark = pytest.mark.no_catalog

MODEL = "contract-model@000000000000"
DIM = 16
K = 10


class Index(VectorIndex, Protocol):
    saved_max_id: int | None


@dataclass
class Backend:
    """Opens the backend's index in one place, and closes whatever it opened at the end."""

    opener: Callable[[str, int], Index]
    opened: list[Index] = field(default_factory=list)

    def open(self, model_id: str = MODEL, dim: int = DIM) -> Index:
        index = self.opener(model_id, dim)
        self.opened.append(index)
        return index

    def reopen(self, index: Index, dim: int = DIM) -> Index:
        """A fresh index from what ``index`` left stored (closed first, so nothing is shared)."""
        _close(index)
        return self.open(dim=dim)

    def close_all(self) -> None:
        for index in self.opened:
            _close(index)


def _close(index: Index) -> None:
    close: Callable[[], None] | None = getattr(index, "close", None)  # FAISS holds nothing open
    if close is not None:
        close()


def _milvus_opener(tmp_path: Path, **options: Any) -> Callable[[str, int], Index]:
    pytest.importorskip("pymilvus", reason="the Milvus backend needs pymilvus (pip install pymilvus)")
    pytest.importorskip(
        "milvus_lite", reason="Milvus Lite needs milvus-lite (pip install 'pymilvus[milvus-lite]')"
    )
    from facetrace.index.milvus_index import MilvusIndex

    return partial(MilvusIndex.open, str(tmp_path / "milvus.db"), **options)


def _faiss_ivf_opener(tmp_path: Path) -> Callable[[str, int], Index]:
    """An IVF-PQ index trained on random vectors (what is on disk, once saved), scanning every list."""

    def opener(model_id: str, dim: int) -> Index:
        if index_file_for(tmp_path, model_id).exists():
            return open_faiss_index(tmp_path, model_id, dim, scan_share=1.0)
        index = empty_faiss_index(
            index_file_for(tmp_path, model_id), model_id, dim, IndexKind.IVF_PQ, count=1000, scan_share=1.0
        )
        random = np.random.default_rng(7).normal(size=(index.training_size, dim)).astype(np.float32)
        index.train(random / np.linalg.norm(random, axis=1, keepdims=True))
        return index

    return opener


def score_tolerance(index: Index) -> float:
    """8-bit codes give scores a few hundredths off (the gallery re-ranks them with the catalog's
    float32 templates); the others are exact floats."""
    return 0.05 if index.kind == IndexKind.IVF_PQ else 1e-5


@pytest.fixture(params=["faiss-flat", "faiss-ivf-pq", "milvus-lite", "milvus-lite-hnsw"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opener: Callable[[str, int], Index]
    if request.param == "faiss-flat":
        opener = partial(open_faiss_index, tmp_path)
    elif request.param == "faiss-ivf-pq":
        opener = _faiss_ivf_opener(tmp_path)
    elif request.param == "milvus-lite":
        opener = _milvus_opener(tmp_path)
    else:  # an approximate index, with build parameters that must reach Milvus Lite
        opener = _milvus_opener(tmp_path, index_type="HNSW", build_params={"M": 8, "efConstruction": 64})
    chosen = Backend(opener)
    yield chosen
    chosen.close_all()


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_search_returns_the_nearest_ids_and_scores(backend: Backend) -> None:
    vectors, ids = unit_vectors(300), np.arange(1000, 1300)
    index = backend.open()
    index.add(ids, vectors, MODEL)
    queries = unit_vectors(5, seed=1)
    scores, found = index.search(queries, K)
    assert scores.dtype == np.float32 and found.dtype == np.int64
    assert scores.shape == found.shape == (5, K)
    brute = queries @ vectors.T
    expected = ids[np.argsort(-brute, axis=1)[:, :K]]
    if getattr(index, "approximate", False):
        recall = np.mean([len(np.intersect1d(f, e)) / K for f, e in zip(found, expected, strict=True)])
        assert recall >= 0.9
        true_scores = np.take_along_axis(brute, found - 1000, axis=1)
        assert np.allclose(scores, true_scores, atol=score_tolerance(index))
        assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
    else:
        assert np.array_equal(found, expected)
        assert np.allclose(scores, np.sort(brute, axis=1)[:, ::-1][:, :K], atol=1e-5)


def test_removed_vectors_are_gone_for_good(backend: Backend) -> None:
    vectors = unit_vectors(50)
    index = backend.open()
    index.add(np.arange(50), vectors, MODEL)
    assert index.remove(np.array([3, 4, 999])) == 2
    assert len(index) == 48
    assert index.remove(np.array([3, 999])) == 0
    assert index.remove(np.array([], dtype=np.int64)) == 0
    _, found = index.search(vectors[3:5], 50)
    assert found.shape == (2, 48)
    assert not np.isin([3, 4], found).any()
    survivors = [i for i in range(50) if i not in (3, 4)]
    assert sorted(index.ids().tolist()) == survivors
    index.save()
    reopened = backend.reopen(index)
    assert len(reopened) == 48
    assert sorted(reopened.ids().tolist()) == survivors


def test_vectors_of_another_model_are_refused(backend: Backend) -> None:
    index = backend.open()
    with pytest.raises(ModelMismatchError):
        index.add(np.array([1]), unit_vectors(1), "other-model@111111111111")
    assert len(index) == 0


def test_ids_and_vectors_must_pair_up(backend: Backend) -> None:
    index = backend.open()
    with pytest.raises(ValueError, match="3 ids for 2 vectors"):
        index.add(np.array([1, 2, 3]), unit_vectors(2), MODEL)
    assert len(index) == 0


def test_save_and_reopen_keep_the_vectors(backend: Backend) -> None:
    vectors = unit_vectors(20)
    index = backend.open()
    index.add(np.arange(100, 120), vectors, MODEL)
    index.save()
    assert index.saved_max_id == 119
    assert index.size_on_disk() > 0
    reopened = backend.reopen(index)
    assert len(reopened) == 20 and reopened.saved_max_id == 119
    assert sorted(reopened.ids().tolist()) == list(range(100, 120))
    scores, found = reopened.search(vectors[5], 1)
    assert found.tolist() == [[105]] and np.isclose(scores[0, 0], 1.0, atol=score_tolerance(reopened))


def test_reopening_with_another_dimension_is_refused(backend: Backend) -> None:
    index = backend.open()
    index.add(np.arange(3), unit_vectors(3), MODEL)
    index.save()
    with pytest.raises(ModelMismatchError):
        backend.reopen(index, dim=DIM // 2)


def test_an_empty_index_answers_with_empty_arrays(backend: Backend) -> None:
    index = backend.open()
    assert len(index) == 0 and len(index.ids()) == 0
    scores, found = index.search(unit_vectors(2), 5)
    assert scores.shape == found.shape == (2, 0)
    assert scores.dtype == np.float32 and found.dtype == np.int64


def test_k_larger_than_the_index_returns_what_there_is(backend: Backend) -> None:
    index = backend.open()
    index.add(np.array([7, 8, 9]), unit_vectors(3), MODEL)
    scores, found = index.search(unit_vectors(1, seed=1), 10)
    assert scores.shape == found.shape == (1, 3)
    assert sorted(found[0].tolist()) == [7, 8, 9]
