"""Ingest analysis on the local process pool against the Ray engine, same photos, same workers.

Method, on the first ``--limit`` photos (sorted by path) of ../shared/data/faces/dev or ``--folder``:
the bytes are read first, then each engine runs them through ``analysis_pool(...).map``
(decode, detect, align, embed, quality, face crops: what ingest's workers do), nothing
else: no catalog, no index. For each engine:
- start-up: from opening the pool to its first result (Ray: starting a local instance,
  the actors and their models; local: spawning the processes and their models);
- images/s over the whole run, start-up included;
- steady images/s, between the first and the last result: the engines' own overhead.
The engines take turns for ``--rounds`` rounds (a busy machine slows whichever runs at the
time); the table gives each engine's median.

Run: ``.venv/bin/python bench/ray_ingest_benchmark.py`` (needs Ray: ``pip install ray``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from facetrace.core.config import Settings
from facetrace.ingest.pool import Failure
from facetrace.ingest.worker import ENGINES, analysis_pool

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "faces" / "dev"
console = Console(width=120)


@dataclass(frozen=True, slots=True)
class EngineRun:
    engine: str
    seconds: float
    startup_s: float
    images_per_s: float
    steady_images_per_s: float
    faces: int
    failures: int


def run_engine(engine: str, settings: Settings, photos: list[tuple[str, bytes]], workers: int) -> EngineRun:
    """Analyse every photo with one engine; timings from opening the pool to the last result."""
    faces = failures = 0
    finished: list[float] = []
    started = time.perf_counter()
    with analysis_pool(settings, workers, thumbnails=True, engine=engine) as pool:
        for _name, result in pool.map(photos):
            finished.append(time.perf_counter())
            if isinstance(result, Failure):
                failures += 1
            else:
                faces += len(result.faces)
    seconds = finished[-1] - started
    return EngineRun(
        engine=engine,
        seconds=round(seconds, 2),
        startup_s=round(finished[0] - started, 2),
        images_per_s=round(len(photos) / seconds, 2),
        steady_images_per_s=round((len(photos) - 1) / (finished[-1] - finished[0]), 2),
        faces=faces,
        failures=failures,
    )


def median_run(runs: list[EngineRun]) -> EngineRun:
    """One engine's median timings over its rounds (its results are the same every round)."""
    assert len({(run.faces, run.failures) for run in runs}) == 1, "an engine changed its answers"

    def median(name: str) -> float:
        return round(statistics.median(getattr(run, name) for run in runs), 2)

    return EngineRun(
        engine=runs[0].engine,
        seconds=median("seconds"),
        startup_s=median("startup_s"),
        images_per_s=median("images_per_s"),
        steady_images_per_s=median("steady_images_per_s"),
        faces=runs[0].faces,
        failures=runs[0].failures,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--folder", type=Path, default=DEV, help="Photos, searched recursively for *.jpg.")
    parser.add_argument("--limit", type=int, default=300, help="Use the first N photos (default 300).")
    parser.add_argument("--workers", type=int, default=2, help="Worker processes / actors per engine.")
    parser.add_argument("--rounds", type=int, default=3, help="Runs per engine, taking turns.")
    parser.add_argument("--json", type=Path, help="Also write the report to this file.")
    args = parser.parse_args()
    if not args.folder.is_dir():
        sys.exit(f"skipped: needs photos at {args.folder} (../shared/data/faces/dev beside the checkout)")
    paths = sorted(args.folder.rglob("*.jpg"))[: args.limit]
    if len(paths) < 2:
        sys.exit(f"skipped: fewer than 2 .jpg files under {args.folder}")
    photos = [(str(path), path.read_bytes()) for path in paths]
    console.print(f"{len(photos)} photos from {args.folder}, {args.workers} workers per engine")

    with tempfile.TemporaryDirectory(prefix="facetrace-bench-") as scratch:
        settings = Settings(data_dir=Path(scratch) / "var")
        rounds = [
            [run_engine(engine, settings, photos, args.workers) for engine in ENGINES]
            for _ in range(max(1, args.rounds))
        ]
    runs = [median_run(list(by_engine)) for by_engine in zip(*rounds, strict=True)]
    local, ray_run = runs
    report = {
        "images": len(photos),
        "workers": args.workers,
        "rounds": len(rounds),
        "medians": [asdict(run) for run in runs],
        "all_runs": [asdict(run) for runs_of_round in rounds for run in runs_of_round],
        "ray_vs_local": round(ray_run.images_per_s / local.images_per_s, 3),
        "ray_vs_local_steady": round(ray_run.steady_images_per_s / local.steady_images_per_s, 3),
    }
    show(report, runs)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        console.print(f"wrote {args.json}")


def show(report: dict, runs: list[EngineRun]) -> None:
    table = Table(
        title=f"Analysis of {report['images']} photos, {report['workers']} workers per engine, "
        f"median of {report['rounds']} rounds"
    )
    for column in ("engine", "start-up s", "total s", "images/s", "steady images/s", "faces", "failures"):
        table.add_column(column, justify="left" if column == "engine" else "right")
    for run in runs:
        table.add_row(
            run.engine,
            f"{run.startup_s:.2f}",
            f"{run.seconds:.2f}",
            f"{run.images_per_s:.1f}",
            f"{run.steady_images_per_s:.1f}",
            f"{run.faces:,}",
            str(run.failures),
        )
    console.print(table)
    console.print(
        f"ray / local: {report['ray_vs_local']:.2f}x images/s overall, "
        f"{report['ray_vs_local_steady']:.2f}x steady"
    )


if __name__ == "__main__":
    main()
