"""``facetrace bench search`` on a small gallery: real templates of a few LFW people padded with
synthetic ones, the product's compressed index, and the peers measured on the same vectors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError
from facetrace.evaluation import scale

# Never opens a catalog (the benchmark measures index files): the --catalog postgres pass skips it.
pytestmark = pytest.mark.no_catalog

PEOPLE = ("Walter_Mondale", "Wen_Jiabao", "Yao_Ming")
DISTRACTORS = 300


@pytest.fixture
def labelled(shared_faces: Path, tmp_path: Path) -> Path:
    """Four photos of each of three people (two in the gallery, two as mated probes), and 300
    distractors: enough real templates to model the synthetic ones on."""
    folder = tmp_path / "people"
    for person in PEOPLE:
        (folder / person).mkdir(parents=True)
        for photo in sorted((shared_faces / "dev" / person).glob("*.jpg"))[:4]:
            shutil.copy(photo, folder / person)
    (folder / "_distractors").mkdir()
    for photo in sorted((shared_faces / "dev" / "_distractors").glob("*.jpg"))[:DISTRACTORS]:
        shutil.copy(photo, folder / "_distractors")
    return folder


@pytest.mark.shared_data
@pytest.mark.slow
def test_a_compressed_gallery_is_measured_against_its_peers(labelled: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var", index_compress_at=2000, index_scan_share=0.1)
    result = scale.run(settings, labelled, 3000)
    assert result["gallery_faces"] == 3000 and result["real_gallery_faces"] >= 6 + DISTRACTORS - 10
    assert result["index"]["kind"] == "ivf-pq" and result["index"]["nprobe"] == 8
    rows = {row["name"]: row for row in result["rows"]}
    assert list(rows) == ["facetrace", "raw FAISS", "numpy exact"]
    assert rows["numpy exact"]["recall_at_10"] == 1.0 and rows["numpy exact"]["mated_rank1_share"] == 1.0
    # Re-ranked with the exact templates, Facetrace never recalls less than the bare index.
    assert rows["facetrace"]["recall_at_10"] >= rows["raw FAISS"]["recall_at_10"]
    assert 0.0 < rows["facetrace"]["recall_at_10"] <= 1.0
    assert result["python_list"]["measured_on"] == 3000 and not result["python_list"]["scaled_linearly"]
    sweep = result["scan_shares"]
    assert [row["scan_share"] for row in sweep] == list(scale.SCAN_SHARES)
    assert [row["nprobe"] for row in sweep] == sorted(row["nprobe"] for row in sweep)
    # Scanning more lists gives the refine stage more to choose from (the data are seeded: no flakes).
    assert sweep[-1]["recall_at_10"] >= sweep[0]["recall_at_10"]
    cached = sorted(p.name for p in (tmp_path / "var" / "bench").iterdir())
    assert cached == ["gallery-3000.npy", "index-3000-ivf-pq", "real_templates.npz"]

    # The command reuses what was built, prints JSON, and writes the report and its plot.
    report = tmp_path / "out" / "scale.json"
    command = [sys.executable, "-m", "facetrace", "--data-dir", str(tmp_path / "var"), "bench", "search"]
    options = [
        "--folder",
        str(labelled),
        "--size",
        "3000",
        "--size",
        "4000",
        "--report",
        str(report),
        "--json",
    ]
    done = subprocess.run(
        [*command, *options],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "FACETRACE_INDEX_COMPRESS_AT": "2000", "FACETRACE_INDEX_SCAN_SHARE": "0.1"},
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert [r["gallery_faces"] for r in printed] == [3000, 4000]
    assert printed[0]["index"]["build_s"] == result["index"]["build_s"]  # reused, not rebuilt
    assert json.loads(report.read_text()) == printed
    assert report.with_suffix(".png").stat().st_size > 10_000


@pytest.mark.shared_data
@pytest.mark.slow
def test_a_gallery_too_large_for_float32_is_stored_as_float16_and_measured_the_same_way(
    labelled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``make bench-large`` does at 100M faces, at 3,000: templates kept as float16 (read
    back as float32 by everything measured), and raw FAISS left out with the reason."""
    monkeypatch.setattr(scale, "IN_MEMORY_MAX_BYTES", 1000)
    monkeypatch.setattr(scale, "RAW_FAISS_MAX_CODE_BYTES", 1000)
    settings = Settings(data_dir=tmp_path / "var", index_compress_at=2000, index_scan_share=0.5)
    result = scale.run(settings, labelled, 3000, queries_limit=40)  # as at 100M: fewer queries
    assert result["recall_queries"] == 40 and 0 < result["mated_probes"] < 40
    stored = np.load(tmp_path / "var" / "bench" / "gallery-3000.npy", mmap_mode="r")
    assert stored.dtype == np.float16 and result["templates_stored_as"] == "float16"
    templates = scale.StoredTemplates(stored)  # rows picked one by one come through another map
    assert np.array_equal(templates[np.array([7, 2999])], templates[:][[7, 2999]])
    assert templates[:3].dtype == np.float32
    rows = {row["name"]: row for row in result["rows"]}
    assert list(rows) == ["facetrace", "numpy exact (streamed)"]  # the file read in blocks
    assert "8-bit codes" in result["not_measured"]["raw FAISS"]
    assert rows["numpy exact (streamed)"]["recall_at_10"] == 1.0  # the truth, over the same float16 values
    assert rows["facetrace"]["recall_at_10"] > 0.5
    assert result["peak_rss_gib"] > 0 and 0 < result["own_memory_searching_gib"] < result["peak_rss_gib"]
    scale.plot([result], tmp_path / "plot.png")  # a searcher missing at a size is left out of it
    assert (tmp_path / "plot.png").stat().st_size > 10_000


def test_too_few_real_templates_cannot_model_synthetic_ones(tmp_path: Path) -> None:
    few = scale.RealTemplates(
        gallery=np.eye(6, 128, dtype=np.float32),
        gallery_labels=np.array(list("abcdef")),
        probes=np.eye(1, 128, dtype=np.float32),
        probe_labels=np.array(["a"]),
        model_id="m",
    )
    with pytest.raises(ValueError, match="cannot model the synthetic ones"):
        scale.gallery_vectors(few, 1000, tmp_path)


def test_exact_top_merges_blocks_correctly() -> None:
    vectors = np.random.default_rng(3).normal(size=(scale.CHUNK + 500, 8)).astype(np.float32)
    queries = vectors[[5, scale.CHUNK + 7]]
    top = scale.exact_top(scale.StoredTemplates(vectors), queries, k=3)
    expected = np.argsort(-(queries @ vectors.T), axis=1)[:, :3]
    assert np.array_equal(top, expected)


def test_the_plot_without_matplotlib_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an install without the bench extra sees
    with pytest.raises(FacetraceError, match=r"pip install 'facetrace\[bench\]'"):
        scale.plot([], tmp_path / "plot.png")
    assert not (tmp_path / "plot.png").exists()
