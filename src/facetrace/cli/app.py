"""The ``facetrace`` command: each subcommand maps onto one service function."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from facetrace.cli.account_commands import audit_app, token_app, unit_app, user_app
from facetrace.cli.authorisation_commands import authorisation_app
from facetrace.cli.bench_commands import bench_app
from facetrace.cli.erasure_commands import certificate_app, erasure_app, retention_app, rights_app
from facetrace.cli.job_commands import jobs_app
from facetrace.cli.numbers import finite
from facetrace.cli.policy_commands import policy_app
from facetrace.cli.report_commands import report_app
from facetrace.cli.serve_command import serve
from facetrace.cli.source_commands import crawl, source_app
from facetrace.cli.state import CliState, governance, settings_of
from facetrace.core.errors import FacetraceError
from facetrace.index.kinds import IndexKind


class FacetraceCommands(TyperGroup):
    """The command group: a refusal (``FacetraceError``) ends any command with a clear message and
    exit status 1, instead of a traceback, whether it runs as a process or in a test."""

    # Typer hands a group its own typer.Context; the base class names the Context of typer's private click.
    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except FacetraceError as exc:
            from facetrace.cli.render import errors

            errors.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=FacetraceCommands,
    help="Facetrace: face search over sources you registered, with provenance for every face.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines instead of tables.")]
WorkersOption = Annotated[
    int | None, typer.Option("--workers", "-w", min=1, help="Worker processes (default: one per core).")
]


@app.callback()
def main(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", envvar="FACETRACE_DATA_DIR", help="Where the gallery lives.")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="FACETRACE_TOKEN",
            help="Act as this API token's user (default: the local bootstrap operator, if allowed).",
        ),
    ] = None,
) -> None:
    from facetrace.core.config import get_settings
    from facetrace.core.private_files import keep_private

    settings = get_settings(data_dir=data_dir)
    keep_private(settings.data_dir)  # every file this process (or the server it runs) writes is 0600
    ctx.obj = CliState(settings, token)


@app.command()
def init(ctx: typer.Context) -> None:
    """Create the data folder and catalog, check the models, and show how to start."""
    from facetrace.cli.render import console, key_value_table
    from facetrace.vision.factory import build_analyzer

    settings = settings_of(ctx)
    analyzer = build_analyzer(settings)
    stats = governance(ctx).gallery.stats()
    console.print(
        key_value_table(
            "Facetrace is ready",
            {
                "data folder": settings.data_dir.resolve(),
                "catalog": stats.catalog,
                "detector": analyzer.detector.model_id,
                "embedder": f"{analyzer.embedder.model_id} ({analyzer.embedder.dim}-d)",
                "images": stats.images,
                "faces": stats.faces,
                # Created at first start (0600): keep it off the catalog's backups; publish its public key.
                "audit signing key": f"{settings.audit_key_path} (public: facetrace audit public-key)",
            },
        )
    )
    console.print(
        '\nRegister a source: [bold]facetrace source add NAME --legal-basis "TEXT" --jurisdiction CC[/]'
        "\nIndex a folder:    [bold]facetrace ingest PATH --source NAME[/]"
        "\nSearch a photo:    [bold]facetrace search PHOTO --case-ref REF --offence CATEGORY "
        '--purpose "WHY"[/]'
        "\nMore:              [bold]facetrace --help[/]",
        highlight=False,
    )


@app.command()
def ingest(
    ctx: typer.Context,
    paths: Annotated[
        list[str], typer.Argument(help="Image files, folders, list files (.txt) or file:// URLs.")
    ],
    source: Annotated[
        str,
        typer.Option(
            "--source",
            "-s",
            help="The registered local source these images come from ('facetrace source add' first).",
        ),
    ],
    demo: Annotated[
        bool,
        typer.Option("--demo", help="Into the demo gallery that 'search --test' uses, not the real one."),
    ] = False,
    workers: WorkersOption = None,
    engine: Annotated[
        str | None,
        typer.Option("--engine", help="local (worker processes) or ray (Ray actors; install .[ray])."),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="A Ray cluster (e.g. ray://head:10001); default: a private one."),
    ] = None,
) -> None:
    """Find, embed and index every face in PATHS; running it again skips what is already in.

    The source must be registered ('facetrace source add NAME --legal-basis … --jurisdiction …'):
    its legal basis, jurisdiction and retention apply, and ingest never creates a source."""
    from facetrace.cli.render import errors, ingest_progress, ingest_summary

    try:
        with ingest_progress() as on_progress:
            stats = governance(ctx).sources.ingest_files(
                source,
                paths,
                demo=demo,
                workers=workers,
                engine=engine,
                ray_address=ray_address,
                on_progress=on_progress,
            )
    except KeyboardInterrupt:
        errors.print(
            "[yellow]interrupted[/]: every image stored so far is kept; run the same command to resume."
        )
        raise typer.Exit(130) from None
    ingest_summary(stats, source)


@app.command()
def search(
    ctx: typer.Context,
    photo: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The probe photo (never stored).")
    ],
    case_ref: Annotated[str | None, typer.Option("--case-ref", help="The case this search serves.")] = None,
    offence: Annotated[
        str | None, typer.Option("--offence", help="Offence category ('facetrace policy show' lists them).")
    ] = None,
    purpose: Annotated[
        str | None, typer.Option("--purpose", help="Why this search is necessary, in words.")
    ] = None,
    authorisation: Annotated[
        str | None, typer.Option("--authorisation", help="Reference of the authorisation, if any.")
    ] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=1000, help="How many results.")] = 10,
    face: Annotated[int, typer.Option("--face", min=1, help="Which probe face: 1 = the largest.")] = 1,
    min_score: Annotated[
        float | None,
        typer.Option("--min-score", callback=finite, help="Hide results below this score."),
    ] = None,
    sources: Annotated[
        list[str] | None,
        typer.Option("--source", help="Only faces seen in this source (repeat for several)."),
    ] = None,
    jurisdictions: Annotated[
        list[str] | None,
        typer.Option(
            "--jurisdiction",
            help="Only faces seen in sources of this country code, e.g. FR (repeat for several).",
        ),
    ] = None,
    test: Annotated[
        bool, typer.Option("--test", help="Try it on the demo gallery only (recorded as a test).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Search the gallery for the faces most similar to a face in PHOTO (recorded in the audit log).

    --source and --jurisdiction narrow the search; given both, it covers the sources that match both."""
    from facetrace.catalog.scope import SearchScope
    from facetrace.cli.render import print_json, search_table
    from facetrace.gallery.results import SearchResponse
    from facetrace.governance.searches import Purpose
    from facetrace.vision.factory import build_analyzer

    settings = settings_of(ctx)
    scope = SearchScope.of(sources or (), jurisdictions or ())
    analyzer = build_analyzer(settings)
    if test:
        outcome = governance(ctx).searches.test(
            analyzer, photo.read_bytes(), k=k, face=face, min_score=min_score, scope=scope
        )
    else:
        outcome = governance(ctx).searches.search(
            analyzer,
            photo.read_bytes(),
            Purpose(case_ref, offence, purpose, authorisation),
            k=k,
            face=face,
            min_score=min_score,
            scope=scope,
        )
    if as_json:
        print_json(SearchResponse.of(outcome).with_has_crop())
    else:
        search_table(outcome)


@app.command()
def stats(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Sources, images, faces, index type and size on disk."""
    from rich.table import Table

    from facetrace.cli.render import console, key_value_table, print_json

    data = governance(ctx).gallery.stats()
    if as_json:
        print_json(data.as_json())
        return
    console.print(
        key_value_table(
            "Gallery",
            {
                "catalog": data.catalog,
                "catalog size": f"{data.catalog_bytes / 1e6:.1f} MB" if data.catalog_bytes else "n/a",
                "sources": len(data.sources),
                "images": data.images,
                "sightings": data.sightings,
                "faces": data.faces,
            },
        )
    )
    sources = Table(title="Sources")
    for column in ("name", "jurisdiction", "legal basis", "images", "faces"):
        sources.add_column(column)
    for s in data.sources:
        sources.add_row(s.name, s.jurisdiction or "—", s.legal_basis or "—", f"{s.images:,}", f"{s.faces:,}")
    console.print(sources)
    indexes = Table(title="Indexes")
    for column in ("model", "kind", "vectors", "size on disk", "where"):
        indexes.add_column(column, overflow="fold")
    for i in data.indexes:
        size = "—" if i.bytes is None else f"{i.bytes / 1e6:.1f} MB"
        vectors = "—" if i.vectors is None else f"{i.vectors:,}"
        indexes.add_row(i.model, i.kind, vectors, size, i.file)
    console.print(indexes)


@app.command()
def reindex(
    ctx: typer.Context,
    kind: Annotated[
        IndexKind | None,
        typer.Option(
            "--kind",
            help="flat: exact; ivf-pq: compressed (trained on the gallery), for millions of faces. "
            "Default: the present structure.",
        ),
    ] = None,
) -> None:
    """Rebuild the vector index from the catalog (the source of truth); searches use the old index
    until the new one is written."""
    from facetrace.cli.render import console

    done = governance(ctx).gallery.reindex(kind)
    console.print(
        f"Rebuilt {done.location} as {done.kind} with {done.faces:,} faces of {done.model_id} in "
        f"{done.seconds:.1f} s ({done.bytes_on_disk / max(done.faces, 1):.0f} bytes per face on disk)."
    )


@app.command("eval")
def evaluate(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="One subfolder per identity.")],
    pairs: Annotated[
        Path | None, typer.Option("--pairs", exists=True, dir_okay=False, help="An LFW-format pairs file.")
    ] = None,
    workers: WorkersOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Accuracy and speed on a labelled folder (or the LFW pairs protocol with --pairs)."""
    from facetrace.cli.render import console, count_progress, key_value_table, print_json
    from facetrace.evaluation.runner import evaluate_folder, evaluate_pairs

    settings = settings_of(ctx)
    with count_progress("embedding") as (on_start, on_progress):
        if pairs is not None:
            report = evaluate_pairs(
                settings, folder, pairs, workers=workers, on_start=on_start, on_progress=on_progress
            )
        else:
            report = evaluate_folder(
                settings, folder, workers=workers, on_start=on_start, on_progress=on_progress
            )
    if as_json:
        print_json(report)
        return
    flat = {
        key: value
        for key, value in report.items()
        if not isinstance(value, dict | list) and key not in ("dataset",)
    }
    console.print(key_value_table(f"Evaluation of {report['dataset']}", flat))
    for section in ("identification", "verification", "throughput"):
        if section in report:
            console.print(key_value_table(section.capitalize(), report[section]))


@app.command()
def calibrate(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="One subfolder per identity.")],
    workers: WorkersOption = None,
) -> None:
    """Measure impostor scores on a labelled folder; results then show expected false matches."""
    from facetrace.cli.render import console, count_progress, key_value_table

    with count_progress("embedding") as (on_start, on_progress):
        report = governance(ctx).searches.calibrate(
            folder, workers=workers, on_start=on_start, on_progress=on_progress
        )
    thresholds = report.pop("score_at_far")
    console.print(key_value_table("Calibration stored", report))
    console.print(key_value_table("Score reached by that share of impostor pairs", thresholds))


@app.command("make-pairs")
def make_pairs_command(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="One subfolder per identity.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the pairs file.")],
    folds: Annotated[int, typer.Option(min=2)] = 10,
    per_fold: Annotated[int, typer.Option(min=1, help="Matched (and mismatched) pairs per fold.")] = 300,
    seed: int = 0,
) -> None:
    """Write an LFW View-2 format pairs file for a labelled folder (identities split across folds)."""
    from facetrace.cli.render import console
    from facetrace.evaluation.dataset import make_pairs

    out.write_text(make_pairs(folder, folds=folds, per_fold=per_fold, seed=seed))
    header = out.read_text().split("\n", 1)[0].split()
    console.print(f"Wrote {out}: {header[0]} folds × {header[1]} matched + {header[1]} mismatched pairs.")


app.add_typer(audit_app, name="audit")
app.add_typer(unit_app, name="unit")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(erasure_app)
app.add_typer(certificate_app, name="erasure")
app.add_typer(retention_app, name="retention")
app.add_typer(authorisation_app, name="authorisation")
app.add_typer(policy_app, name="policy")
app.add_typer(report_app, name="report")
app.add_typer(rights_app, name="rights")
app.add_typer(source_app, name="source")
app.add_typer(jobs_app, name="jobs")
app.add_typer(bench_app, name="bench")
app.command("crawl")(crawl)
app.command("serve")(serve)


def run() -> None:
    """Entry point of the ``facetrace`` command and of ``python -m facetrace``."""
    app()
