"""The FAISS index: exact answers, real deletion, atomic persistence, one model per index."""

from __future__ import annotations

import logging
from pathlib import Path

import faiss
import numpy as np
import pytest

from facetrace.core.errors import ModelMismatchError
from facetrace.index import code_store, ivf_pq_index
from facetrace.index.code_store import CodeStore
from facetrace.index.faiss_files import empty_faiss_index, open_faiss_index
from facetrace.index.faiss_index import FaissIndex, index_file_for
from facetrace.index.ivf_pq_index import MAX_LISTS, IvfPqIndex, nlist_for
from facetrace.index.kinds import IndexKind, kind_for

# Never opens a catalog (the FAISS index files only): the --catalog postgres pass skips it.
pytestmark = pytest.mark.no_catalog

MODEL = "test-model@000000000000"


def unit_vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_search_is_exact(tmp_path: Path) -> None:
    vectors = unit_vectors(500)
    ids = np.arange(1000, 1500)
    index = open_faiss_index(tmp_path, MODEL, 16)
    index.add(ids, vectors, MODEL)
    queries = unit_vectors(5, seed=1)
    scores, found = index.search(queries, 10)
    brute = queries @ vectors.T
    expected = ids[np.argsort(-brute, axis=1)[:, :10]]
    assert np.array_equal(found, expected)
    assert np.allclose(scores, np.sort(brute, axis=1)[:, ::-1][:, :10], atol=1e-5)


def test_k_larger_than_the_gallery_and_an_empty_gallery(tmp_path: Path) -> None:
    index = open_faiss_index(tmp_path, MODEL, 16)
    scores, ids = index.search(unit_vectors(1), 5)
    assert scores.shape == (1, 0) and ids.shape == (1, 0)
    index.add(np.array([7, 8]), unit_vectors(2), MODEL)
    _, ids = index.search(unit_vectors(1), 5)
    assert sorted(ids[0].tolist()) == [7, 8]


def test_removed_vectors_are_gone(tmp_path: Path) -> None:
    vectors = unit_vectors(50)
    index = open_faiss_index(tmp_path, MODEL, 16)
    index.add(np.arange(50), vectors, MODEL)
    assert index.remove(np.array([3, 4, 999])) == 2
    assert len(index) == 48
    _, ids = index.search(vectors[3:5], 50)
    assert 3 not in ids and 4 not in ids
    index.save()
    reopened = open_faiss_index(tmp_path, MODEL, 16)
    assert sorted(reopened.ids().tolist()) == [i for i in range(50) if i not in (3, 4)]


def test_save_and_reopen(tmp_path: Path) -> None:
    vectors = unit_vectors(20)
    index = open_faiss_index(tmp_path, MODEL, 16)
    index.add(np.arange(100, 120), vectors, MODEL)
    index.save()
    assert index.saved_max_id == 119
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [index.path.name, index.meta_path.name]
    )  # no temporary files left behind
    reopened = open_faiss_index(tmp_path, MODEL, 16)
    assert len(reopened) == 20 and reopened.saved_max_id == 119
    _, ids = reopened.search(vectors[5], 1)
    assert ids[0, 0] == 105


def test_a_meta_file_lost_in_a_crash_forces_a_full_check(tmp_path: Path) -> None:
    index = open_faiss_index(tmp_path, MODEL, 16)
    index.add(np.arange(3), unit_vectors(3), MODEL)
    index.save()
    index.meta_path.unlink()
    assert open_faiss_index(tmp_path, MODEL, 16).saved_max_id == -1


def test_vectors_of_another_model_are_refused(tmp_path: Path) -> None:
    index = open_faiss_index(tmp_path, MODEL, 16)
    with pytest.raises(ModelMismatchError, match="refusing to add other-model"):
        index.add(np.arange(2), unit_vectors(2), "other-model@123")
    index.add(np.arange(2), unit_vectors(2), MODEL)
    index.save()
    with pytest.raises(ModelMismatchError, match="16-d"):
        open_faiss_index(tmp_path, MODEL, 32)


def test_each_model_has_its_own_file(tmp_path: Path) -> None:
    assert index_file_for(tmp_path, "sface-2021dec@0ba9") != index_file_for(tmp_path, "arcface-w600k@12ab")
    assert index_file_for(tmp_path, "a/../../b@c").parent == tmp_path


def trained_ivf(tmp_path: Path, vectors: np.ndarray, ids: np.ndarray, scan_share: float) -> FaissIndex:
    index = empty_faiss_index(
        index_file_for(tmp_path, MODEL),
        MODEL,
        16,
        IndexKind.IVF_PQ,
        count=len(vectors),
        scan_share=scan_share,
    )
    assert index.needs_training and index.training_size == nlist_for(len(vectors)) * 64
    index.train(vectors)
    index.add(ids, vectors, MODEL)
    return index


def test_the_compressed_index_finds_the_exact_neighbours_when_it_scans_every_list(tmp_path: Path) -> None:
    vectors = unit_vectors(2000)
    ids = np.arange(10, 2010)
    index = trained_ivf(tmp_path, vectors, ids, scan_share=1.0)
    assert index.kind == "ivf-pq" and index.approximate and len(index) == 2000
    assert np.array_equal(np.sort(index.ids()), ids)
    queries = vectors[:20]
    scores, found = index.search(queries, 5)
    assert np.array_equal(found[:, 0], ids[:20])  # each vector is its own nearest neighbour
    assert np.allclose(scores[:, 0], 1.0, atol=0.02)  # 8-bit codes: close, not exact
    assert np.array_equal(index.search_by_faiss_alone(queries, 5)[:, 0], ids[:20])  # FAISS's IndexRefine


def test_the_8_bit_scores_are_those_of_the_decoded_codes(tmp_path: Path) -> None:
    """The refine stage scores codes without decoding them; the algebra must match FAISS's decoder."""
    vectors = unit_vectors(3000, seed=3)
    index = trained_ivf(tmp_path, vectors, np.arange(1, 3001), scan_share=1.0)
    assert isinstance(index, IvfPqIndex)
    query = unit_vectors(1, seed=4)
    scores, found = index.search(query, 50)
    decoded = index._quantizer.decode(index._codes.rows(found[0] - 1))  # row = id - 1: added in order
    assert np.allclose(scores[0], decoded @ query[0], atol=1e-5)


def test_the_compressed_index_deletes_physically_and_persists(tmp_path: Path) -> None:
    vectors = unit_vectors(1000)
    ids = np.arange(1, 1001)
    index = trained_ivf(tmp_path, vectors, ids, scan_share=0.2)
    assert isinstance(index, IvfPqIndex)
    assert index.remove(np.array([5, 6, 7, 99_999])) == 3
    assert not {5, 6, 7} & set(index.ids().tolist()) and len(index) == 997
    assert not index._codes.rows(np.arange(4, 7)).any()  # the 8-bit codes are overwritten, not just hidden
    _, found = index.search(vectors[4:7], 3)
    assert not {5, 6, 7} & set(found.ravel().tolist())
    index.save()
    assert index.path.read_bytes()[:4] == b"PK\x03\x04"  # an archive of its parts, not a FAISS file
    again = open_faiss_index(tmp_path, MODEL, 16, scan_share=0.2)
    assert (again.kind, len(again), again.saved_max_id) == ("ivf-pq", 997, 1000)
    assert again.parameters["nprobe"] == round(0.2 * nlist_for(1000))
    _, found = again.search(vectors[4:7], 3)
    assert not {5, 6, 7} & set(found.ravel().tolist())
    again.add(np.array([2000]), vectors[:1], MODEL)  # trained: new faces go into its lists
    assert 2000 in again.ids().tolist()
    assert again.search(vectors[:1], 2)[1][0].tolist() in ([1, 2000], [2000, 1])  # the same vector twice


def test_the_8_bit_codes_live_in_a_mapped_file_that_only_a_save_extends(tmp_path: Path) -> None:
    vectors = unit_vectors(1000)
    index = trained_ivf(tmp_path, vectors, np.arange(1, 1001), scan_share=0.2)
    index.save()
    [codes_file] = tmp_path.glob("*.codes-*")
    on_disk = np.fromfile(codes_file, dtype=np.uint8).reshape(-1, 16)
    assert on_disk.shape == (1000, 16) and on_disk[4:7].any()

    searching = open_faiss_index(tmp_path, MODEL, 16, scan_share=0.2)  # what a server holds
    searching.add(np.array([2000]), vectors[:1], MODEL)  # catching up: in memory, the file untouched
    assert codes_file.stat().st_size == 1000 * 16 and 2000 in searching.ids().tolist()
    assert searching.remove(np.array([5, 6, 7])) == 3  # erasure: zeroed in the file at once
    assert not np.fromfile(codes_file, dtype=np.uint8).reshape(-1, 16)[4:7].any()

    writing = open_faiss_index(tmp_path, MODEL, 16, scan_share=0.2)
    writing.add(np.array([3000]), vectors[:1], MODEL)
    writing.save()  # a writer's save appends its rows after the saved ones
    assert codes_file.stat().st_size == 1001 * 16
    assert writing.size_on_disk() > codes_file.stat().st_size

    rebuilt = trained_ivf(tmp_path, vectors[:500], np.arange(1, 501), scan_share=0.2)
    rebuilt.save()  # a new index writes new codes; the old file goes once the new index is in place
    [new_codes] = tmp_path.glob("*.codes-*")
    assert new_codes != codes_file and new_codes.stat().st_size == 500 * 16
    assert len(open_faiss_index(tmp_path, MODEL, 16)) == 500


def test_an_opened_index_reads_its_codes_ahead_and_answers_as_before(tmp_path: Path) -> None:
    vectors = unit_vectors(1000)
    index = trained_ivf(tmp_path, vectors, np.arange(1, 1001), scan_share=0.2)
    index.save()
    opened = open_faiss_index(tmp_path, MODEL, 16, scan_share=0.2)
    assert isinstance(opened, IvfPqIndex)
    opened.wait_until_warm()
    assert np.array_equal(opened.search(vectors[:5], 10)[1], index.search(vectors[:5], 10)[1])


def test_the_code_store_gives_its_rows_in_order_and_reads_ahead_only_a_file_that_fits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = np.arange(60, dtype=np.uint8).reshape(-1, 4)
    CodeStore(tmp_path / "codes", 4, owned=True).append(rows[:10])  # a new file takes rows at once
    store = CodeStore(tmp_path / "codes", 4, rows=10)
    store.append(rows[10:])  # kept in memory until a commit
    assert np.array_equal(store.all(), rows) and np.array_equal(store.rows(np.array([12, 3])), rows[[12, 3]])
    store.warm()
    read = []
    with pytest.MonkeyPatch.context() as patch:  # a file too large to stay in the page cache
        patch.setattr(code_store, "WARM_MAX_SHARE_OF_MEMORY", 0.0)
        patch.setattr(Path, "open", lambda path, *args, **kwargs: read.append(path))
        store.warm()
    assert not read
    (tmp_path / "codes").unlink()
    with caplog.at_level(logging.INFO, logger="facetrace.index.code_store"):
        store.warm()
    assert "were not read ahead" in caplog.text


def test_the_lists_have_a_file_of_their_own_that_each_save_replaces(tmp_path: Path) -> None:
    vectors = unit_vectors(1000)
    index = trained_ivf(tmp_path, vectors, np.arange(1, 1001), scan_share=0.2)
    index.save()
    [lists] = tmp_path.glob("*.lists-*")
    with np.load(index.path) as stored:
        assert str(stored["lists_file"]) == lists.name and "coarse" not in stored
    assert index.path.stat().st_size < lists.stat().st_size  # the archive holds row ids, not lists
    assert index.size_on_disk() > lists.stat().st_size + 1000 * 16  # the lists and codes counted
    index.remove(np.array([1, 2]))
    index.save()
    [again] = tmp_path.glob("*.lists-*")
    assert again != lists  # the old lists (with faces 1 and 2 in them) are gone
    assert not {1, 2} & set(open_faiss_index(tmp_path, MODEL, 16).ids().tolist())


def test_an_archive_that_holds_its_lists_is_still_read(tmp_path: Path) -> None:
    vectors = unit_vectors(1000)
    index = trained_ivf(tmp_path, vectors, np.arange(1, 1001), scan_share=0.2)
    assert isinstance(index, IvfPqIndex)
    index.save()
    with np.load(index.path) as stored:
        parts = {name: stored[name] for name in ("quantizer", "row_ids", "codes_file")}
    with index.path.open("wb") as file:  # the format before the lists had a file of their own
        np.savez(file, coarse=faiss.serialize_index(index._coarse), **parts)
    opened = open_faiss_index(tmp_path, MODEL, 16, scan_share=0.2)
    assert np.array_equal(opened.search(vectors[:5], 10)[1], index.search(vectors[:5], 10)[1])


def test_a_save_between_reading_the_archive_and_its_lists_file_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vectors = unit_vectors(1000)
    writer = trained_ivf(tmp_path, vectors, np.arange(1, 1001), scan_share=0.2)
    writer.save()
    read_index = faiss.read_index
    saves = []

    def another_process_saves_first(name: str) -> faiss.Index:
        if not saves:  # the archive was read; its lists file goes before FAISS opens it
            writer.remove(np.array([7]))
            writer.save()
            saves.append(name)
        return read_index(name)

    monkeypatch.setattr(faiss, "read_index", another_process_saves_first)
    reader = open_faiss_index(tmp_path, MODEL, 16, scan_share=0.2)
    assert saves and not Path(saves[0]).exists()
    assert len(reader) == 999 and 7 not in reader.ids().tolist()  # the archive saved meanwhile


def test_one_query_scanned_in_parts_finds_what_one_scan_finds(tmp_path: Path) -> None:
    if ivf_pq_index.PARTS < 2:
        pytest.skip("one core: a query's lists are scanned in one part")
    vectors = unit_vectors(3000, seed=5)
    index = trained_ivf(tmp_path, vectors, np.arange(1, 3001), scan_share=0.5)
    assert isinstance(index, IvfPqIndex)
    queries = unit_vectors(5, seed=6)
    in_parts = index._propose(queries, 50)
    whole = index._coarse.search(queries, 50)[1]
    # The same faces; PQ scores are coarse, so a tie at the 50th place may fall either way.
    assert all(len(np.intersect1d(a, b)) >= 48 for a, b in zip(in_parts, whole, strict=True))


def test_a_search_is_padded_when_the_scanned_lists_hold_fewer_faces_than_asked(tmp_path: Path) -> None:
    vectors = unit_vectors(1000)
    index = trained_ivf(tmp_path, vectors, np.arange(1, 1001), scan_share=0.01)  # one of 25 lists
    scores, found = index.search(vectors[:1], 200)
    assert scores.shape == found.shape == (1, 200)
    held = found[0] != -1
    assert 0 < held.sum() < 200 and np.all(np.isneginf(scores[0][~held]))


def test_ivf_list_counts_follow_the_gallery_size() -> None:
    assert nlist_for(10) == 1  # too few faces to train even two lists
    assert nlist_for(10_000) == 200  # 2 sqrt(N)
    assert nlist_for(3_000) == 76  # ~39 faces per list at this size
    assert nlist_for(1_000_000) == 2000
    assert nlist_for(100_000_000) == MAX_LISTS  # not 20,000: see bench/coarse_assignment.py


def test_the_gallery_size_decides_the_structure() -> None:
    assert kind_for(2, 3) == IndexKind.FLAT
    assert kind_for(3, 3) == IndexKind.IVF_PQ
    assert kind_for(10**9, 0) == IndexKind.FLAT  # 0: never compressed on its own
