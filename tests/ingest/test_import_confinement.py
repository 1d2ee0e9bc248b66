"""Folder imports stay inside their folder: what is swapped in after the listing (a file or a folder
replaced by a link out, a FIFO, a device) is refused when it is read, and no file is read past the
size cap (FACETRACE_MAX_IMAGE_BYTES), nor read at all when ``fstat`` already says it is too large."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from facetrace.collect.sources import SourceSpec
from facetrace.core.config import Settings
from facetrace.governance.service import Governance
from facetrace.ingest.inputs import InputImage, expand_inputs
from facetrace.ingest.pipeline import IngestStats
from support.api import ADMIN_PASSWORD, Api, serving_api
from support.cli import facetrace
from support.ingesting import ingest_items
from support.jobs import add_local_source, finished, start_import, wait_for
from support.photos import encode

GIB = 1024**3


@pytest.fixture
def import_dir(tmp_path: Path, astronaut_rgb: np.ndarray) -> Path:
    """imports/press/2026 holds two portraits; elsewhere/2026, outside it, two other photos
    under the same names (what a link swapped in would lead to)."""
    root = tmp_path / "imports"
    for folder, flip in ((root / "press" / "2026", 1), (tmp_path / "elsewhere" / "2026", -1)):
        folder.mkdir(parents=True)
        for n in range(2):
            crop = np.ascontiguousarray(astronaut_rgb[n * 8 : 400 + n * 8, ::flip])
            (folder / f"{n}.jpg").write_bytes(encode(crop, "JPEG"))
    return root


def import_swapping(settings: Settings, import_dir: Path, swap: Callable[[], None]) -> IngestStats:
    """Import press/ through governance, running ``swap`` once the folder is listed, before any
    file of it is read (the import asks whether to stop before each image)."""
    operator = Governance.open(settings.model_copy(update={"import_dir": import_dir}))
    operator.sources.add(SourceSpec("archive", "local", "own press archive", "FR"))
    swapped: list[bool] = []

    def swap_once() -> bool:
        if not swapped:
            swap()
            swapped.append(True)
        return False

    stats, stopped = operator.sources.import_folder("archive", "press", should_stop=swap_once)
    assert swapped and not stopped
    return stats


def test_a_file_swapped_for_a_link_out_after_the_listing_is_not_read(
    gov_settings: Settings, import_dir: Path
) -> None:
    listed = import_dir / "press" / "2026" / "0.jpg"

    def swap() -> None:
        listed.unlink()
        listed.symlink_to(import_dir.parent / "elsewhere" / "2026" / "0.jpg")

    stats = import_swapping(gov_settings, import_dir, swap)
    assert stats.new_images == 1
    assert stats.failures == [
        (str(listed), "cannot read: the file is now a link: links are not followed here")
    ]


def test_a_folder_swapped_for_a_link_out_after_the_listing_is_not_followed(
    gov_settings: Settings, import_dir: Path
) -> None:
    press = import_dir / "press"

    def swap() -> None:
        press.rename(import_dir / "moved")
        press.symlink_to(import_dir.parent / "elsewhere")  # same names below it, other photos

    stats = import_swapping(gov_settings, import_dir, swap)
    assert stats.new_images == 0
    assert [message for _, message in stats.failures] == [
        "cannot read: 'press' is no longer a folder (a link?): not followed"
    ] * 2


@pytest.mark.timeout(120)  # reading a FIFO would wait for a writer for ever
def test_a_fifo_swapped_in_is_refused_without_blocking(gov_settings: Settings, import_dir: Path) -> None:
    listed = import_dir / "press" / "2026" / "1.jpg"

    def swap() -> None:
        listed.unlink()
        os.mkfifo(listed)

    stats = import_swapping(gov_settings, import_dir, swap)
    assert stats.new_images == 1
    assert stats.failures == [
        (str(listed), "cannot read: not a regular file (a FIFO, device or folder): not read")
    ]


def test_the_operators_own_ingest_follows_links_but_reads_no_device(
    settings: Settings, import_dir: Path
) -> None:
    folder = import_dir / "press" / "2026"
    items = list(expand_inputs([str(folder)], max_bytes=settings.max_image_bytes))
    (folder / "0.jpg").unlink()
    (folder / "0.jpg").symlink_to("/dev/zero")  # endless: a whole read would never end
    (folder / "1.jpg").unlink()
    (folder / "1.jpg").symlink_to(import_dir.parent / "elsewhere" / "2026" / "1.jpg")  # the operator's link
    stats = ingest_items(settings, items, total=len(items), source_name="archive")
    assert stats.new_images == 1
    assert stats.failures == [
        (str(folder / "0.jpg"), "cannot read: not a regular file (a FIFO, device or folder): not read")
    ]


def test_a_file_larger_than_the_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as sparse:
        sparse.truncate(GIB)  # takes no disk space, reads as 1 GiB of zeros
    tracemalloc.start()
    try:
        with pytest.raises(OSError, match=r"1,073,741,824 bytes, more than the 1,048,576 allowed"):
            InputImage(huge, str(huge), max_bytes=1024 * 1024).read()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024  # nothing of the file was read

    exact = tmp_path / "exact.jpg"
    exact.write_bytes(b"x" * 1000)
    assert InputImage(exact, str(exact), max_bytes=1000).read() == b"x" * 1000
    with pytest.raises(OSError, match="more than the 999 allowed"):
        InputImage(exact, str(exact), max_bytes=999).read()


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc")
def test_a_file_whose_size_lies_is_read_no_further_than_the_cap() -> None:
    status = Path("/proc/self/status")  # a regular file whose fstat size is 0, its text over 100 bytes
    assert status.stat().st_size == 0 and len(status.read_bytes()) > 101
    with pytest.raises(OSError, match="more than the 100 bytes allowed once read"):
        InputImage(status, str(status), max_bytes=100).read()


@pytest.fixture
def api(tmp_path: Path, import_dir: Path) -> Iterator[Api]:
    settings = Settings(
        data_dir=tmp_path / "var", workers=1, admin_password=ADMIN_PASSWORD, import_dir=import_dir
    )
    with serving_api(settings) as api:
        yield api


def test_an_import_job_refuses_a_sparse_giant_and_counts_it(api: Api, import_dir: Path) -> None:
    with (import_dir / "press" / "2026" / "giant.jpg").open("wb") as sparse:
        sparse.truncate(GIB)
    add_local_source(api.admin)
    started = start_import(api.admin, "press")
    assert started.status_code == 202, started.text
    job = wait_for(api.admin, started.json()["id"], finished)
    assert job["state"] == "done", job
    assert (job["progress"]["new_images"], job["progress"]["errors"]) == (2, 1)


def test_the_ingest_command_keeps_the_size_cap(
    tmp_path: Path, import_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = import_dir / "press" / "2026"
    with (folder / "giant.jpg").open("wb") as sparse:
        sparse.truncate(GIB)
    monkeypatch.setenv("FACETRACE_MAX_IMAGE_BYTES", str(10 * 1024 * 1024))
    data_dir = tmp_path / "var"
    legal = ("--legal-basis", "own press archive", "--jurisdiction", "FR")
    assert facetrace(data_dir, "source", "add", "archive", *legal).returncode == 0
    done = facetrace(data_dir, "ingest", str(folder), "--source", "archive", "--workers", "1")
    assert done.returncode == 0, done.stderr
    said = (done.stdout + done.stderr).replace("\n", "")  # the console wraps long lines
    assert "giant.jpg: cannot read: 1,073,741,824 bytes, more than the 10,485,760 allowed" in said
