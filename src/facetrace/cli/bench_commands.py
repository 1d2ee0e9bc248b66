"""``facetrace bench``: measurements of this installation, against its peers, in the same run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from facetrace.cli.state import settings_of

bench_app = typer.Typer(help="Benchmarks of search at scale, against the peers.", no_args_is_help=True)


@bench_app.command("search")
def bench_search(
    ctx: typer.Context,
    folder: Annotated[
        Path,
        typer.Option(
            "--folder", exists=True, file_okay=False, help="Labelled photos (one subfolder per person)."
        ),
    ],
    sizes: Annotated[list[int], typer.Option("--size", min=1, help="Gallery size; repeat for several.")],
    report: Annotated[
        Path | None,
        typer.Option(
            "--report", dir_okay=False, help="Also write the results here (JSON) and a plot beside it."
        ),
    ] = None,
    queries: Annotated[
        int | None,
        typer.Option(
            "--queries", min=10, help="Measure on this many queries (default: every probe and 150 synthetic)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Build (or reuse, under <data_dir>/bench) galleries of real and synthetic templates and measure
    search on them: recall, mated rank-1, latency, bytes per face, against raw FAISS, numpy and a
    Python list."""
    from facetrace.cli.render import console, print_json, scale_table
    from facetrace.evaluation import scale

    settings = settings_of(ctx)
    results = []
    for size in sizes:
        if not as_json:
            console.print(f"Gallery of {size:,} faces: built, or reused from {settings.data_dir / 'bench'} …")
        results.append(scale.run(settings, folder, size, queries))
        if not as_json:
            scale_table(results[-1])
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(results, indent=2))
        scale.plot(results, report.with_suffix(".png"))
    if as_json:
        print_json(results)
