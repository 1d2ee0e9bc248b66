"""How the CLI shows things: Rich tables, progress bars and JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from facetrace.collect.crawler import CrawlStats
    from facetrace.gallery.search import SearchOutcome
    from facetrace.ingest.pipeline import IngestStats

console = Console()
errors = Console(stderr=True)


def print_json(data: Any) -> None:
    """Plain JSON on stdout (no Rich markup), for machines."""
    print(json.dumps(data, indent=2, default=str))


class RateColumn(ProgressColumn):
    """Images per second since the start."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:6.1f} img/s", style="progress.data.speed")


def _progress(*extra: ProgressColumn) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        *extra,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=errors,
        transient=False,
    )


@contextmanager
def ingest_progress(total_hint: str = "ingest") -> Iterator[Any]:
    """Yields a callback for :func:`facetrace.ingest.pipeline.ingest` that drives a progress bar."""
    with _progress(
        TextColumn("faces [cyan]{task.fields[faces]}[/] errors [red]{task.fields[errors]}[/]")
    ) as bar:
        task = bar.add_task(total_hint, total=None, faces=0, errors=0)

        def update(stats: IngestStats) -> None:
            total = stats.total or None  # a crawl does not know its total
            bar.update(task, total=total, completed=stats.done, faces=stats.faces, errors=len(stats.failures))

        yield update


@contextmanager
def crawl_progress() -> Iterator[Callable[[CrawlStats, IngestStats], None]]:
    """Yields a callback for a crawl: pages and images fetched, faces found, errors so far."""
    with _progress(
        TextColumn(
            "pages [cyan]{task.fields[pages]}[/] images [cyan]{task.fields[images]}[/] "
            "faces [cyan]{task.fields[faces]}[/] errors [red]{task.fields[errors]}[/]"
        )
    ) as bar:
        task = bar.add_task("crawl", total=None, pages=0, images=0, faces=0, errors=0)

        def update(crawled: CrawlStats, ingested: IngestStats) -> None:
            bar.update(
                task,
                completed=ingested.done,
                pages=crawled.pages,
                images=crawled.images,
                faces=ingested.faces,
                errors=len(crawled.errors) + len(ingested.failures),
            )

        yield update


@contextmanager
def count_progress(description: str) -> Iterator[tuple[Any, Any]]:
    """Yields ``(start(total), advance(done))`` callbacks for a plain counting progress bar."""
    with _progress() as bar:
        task = bar.add_task(description, total=None)
        yield (lambda total: bar.update(task, total=total)), (lambda done: bar.update(task, completed=done))


def ingest_summary(stats: IngestStats, source: str) -> None:
    table = Table(title=f"Ingested into source '{source}'", show_header=False)
    table.add_row("images named", f"{stats.total:,}")
    table.add_row("new images analysed", f"{stats.new_images:,}")
    table.add_row("already in the catalog (skipped)", f"{stats.known_images:,}")
    table.add_row("faces found", f"{stats.faces:,}")
    table.add_row("new images without a face", f"{stats.images_without_faces:,}")
    table.add_row("failed", f"{len(stats.failures):,}")
    for rule, count in sorted(stats.do_not_collect_rules.items()):
        what = "faces dropped" if rule == "template" else "places not read"
        table.add_row(f"do-not-collect ({rule}): {what}", f"{count:,}")
    if stats.withheld_do_not_collect:
        table.add_row("images not stored (every face dropped)", f"{stats.withheld_do_not_collect:,}")
    if stats.erased_meanwhile:
        table.add_row("images not stored (erased while being collected)", f"{stats.erased_meanwhile:,}")
    rate = stats.done / stats.elapsed if stats.elapsed else 0
    table.add_row("time", f"{stats.elapsed:.1f} s ({rate:.1f} images/s)")
    if stats.index_rebuilt_as:
        table.add_row("index", f"rebuilt as {stats.index_rebuilt_as} (FACETRACE_INDEX_COMPRESS_AT reached)")
    console.print(table)
    for location, message in stats.failures[:20]:
        errors.print(f"[red]skipped[/] {location}: {message}", highlight=False)
    if len(stats.failures) > 20:
        errors.print(f"… and {len(stats.failures) - 20} more")


def search_table(outcome: SearchOutcome) -> None:
    used = outcome.probe_faces[outcome.face_used - 1]
    console.print(
        f"Probe: {len(outcome.probe_faces)} face(s) found; searching face {outcome.face_used} "
        f"(box {', '.join(f'{v:.0f}' for v in used.detection.box)}, quality {used.quality:.2f}) "
        f"in {outcome.gallery_size:,} faces ({outcome.model_id})"
        + (f", narrowed to {outcome.scope.describe()}." if outcome.scope.narrowed else "."),
        highlight=False,
    )
    if outcome.hidden:
        console.print(
            f"{outcome.hidden} weaker result(s) hidden: at their scores the calibration expects more false "
            "matches than FACETRACE_MAX_EXPECTED_FALSE_MATCHES allows.",
            highlight=False,
        )
    if not outcome.hits:
        console.print("No results.")
        return
    caption = "Leads to check, not identifications. "
    caption += (
        "'false matches' = how many different people a gallery this size is expected to hold at that score."
        if outcome.calibrated
        else "This model has no calibration (facetrace calibrate DIR): scores are bare cosine similarities."
    )
    table = Table(caption=caption)
    for column in ("rank", "score", "false matches", "face", "found at", "source", "box"):
        table.add_column(column, overflow="fold")
    for hit in outcome.hits:
        sighting = hit.face.image.sightings[0]
        more = len(hit.face.image.sightings) - 1
        where = sighting.location + (f"\n(page {sighting.page_url})" if sighting.page_url else "")
        where += f"\n+{more} more place(s)" if more else ""
        copies = [s.location for copy in hit.copies for s in copy.face.image.sightings]
        where += "".join(f"\ncopy at {location}" for location in copies[:3])
        where += f"\n+{len(copies) - 3} more cop(ies)" if len(copies) > 3 else ""
        table.add_row(
            str(hit.rank),
            f"{hit.score:.3f}",
            "—" if hit.expected_false_matches is None else f"{hit.expected_false_matches:.2g}",
            str(hit.face.id),
            where,
            sighting.source.name,
            " ".join(f"{v:.0f}" for v in hit.face.box),
        )
    console.print(table)


def key_value_table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False)
    for key, value in rows.items():
        if isinstance(value, bool):
            shown = "yes" if value else "no"
        else:
            shown = f"{value:,}" if isinstance(value, int) else str(value)
        table.add_row(key, shown)
    return table


def scale_table(result: dict[str, Any]) -> None:
    """One gallery size of ``facetrace bench search``: each searcher, and ratios to Facetrace."""
    index = result["index"]
    ours = next(row for row in result["rows"] if row["name"] == "facetrace")
    faces = f"{result['gallery_faces']:,} faces ({result['real_gallery_faces']:,} real)"
    parameters = [
        f"{name} {index[name]:,}" for name in ("nlist", "nprobe", "refine_candidates") if name in index
    ]
    structure = " ".join([index["kind"], *parameters])
    built = f"built in {index['build_s']} s, opened in {index['open_s']} s, {index['bytes_per_face']} B/face"
    table = Table(title=f"{faces}, index {structure}, {built}", box=box.SIMPLE_HEAD)
    for column in ("searcher", "p50 ms", "p95 ms", "recall@10", "mated rank-1 / exact", "p50 / facetrace"):
        table.add_column(column, justify="left" if column == "searcher" else "right")
    for row in result["rows"]:
        table.add_row(
            row["name"],
            f"{row['p50_ms']:.2f}",
            f"{row['p95_ms']:.2f}",
            f"{row['recall_at_10']:.4f}",
            f"{row['mated_rank1_share']:.4f}",
            f"{row['p50_ms'] / ours['p50_ms']:.2f}x",
        )
    scan = result["python_list"]
    ratio = f"{scan['p50_ms'] / ours['p50_ms']:.0f}x"
    name = "Python list*" if scan["scaled_linearly"] else "Python list"
    table.add_row(name, f"{scan['p50_ms']:.1f}", f"{scan['p95_ms']:.1f}", "1.0000", "1.0000", ratio)
    console.print(table)
    if scan["scaled_linearly"]:
        console.print(
            f"* timed on the first {scan['measured_on']:,} faces and scaled linearly", highlight=False
        )
    for name, why in result.get("not_measured", {}).items():
        console.print(f"{name}: not measured, {why}", highlight=False)
    console.print(
        f"templates stored as {result['templates_stored_as']}; memory of its own while Facetrace "
        f"searched {result['own_memory_searching_gib']} GiB, peak resident size {result['peak_rss_gib']} "
        "GiB (mapped file pages included)",
        highlight=False,
    )
    if result.get("scan_shares"):
        sweep = Table(title="Facetrace scanning more or less of its lists", box=box.SIMPLE_HEAD)
        for column in ("share of lists", "lists", "p50 ms", "p95 ms", "recall@10", "mated rank-1 / exact"):
            sweep.add_column(column, justify="right")
        for row in result["scan_shares"]:
            sweep.add_row(
                f"{row['scan_share']:.2f}",
                f"{row['nprobe']:,}",
                f"{row['p50_ms']:.2f}",
                f"{row['p95_ms']:.2f}",
                f"{row['recall_at_10']:.4f}",
                f"{row['mated_rank1_share']:.4f}",
            )
        console.print(sweep)
