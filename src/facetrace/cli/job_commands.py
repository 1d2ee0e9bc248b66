"""``facetrace jobs``: every crawl, folder import and ingest the catalog holds, with its state and counts,
those that a killed server or command left behind included (shown as interrupted)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from facetrace.cli.state import governance
from facetrace.governance.job_listing import MAX_LISTED

jobs_app = typer.Typer(
    help="Crawls, imports and ingests: who started them, when, their state and counts (admin).",
    invoke_without_command=True,
)


@jobs_app.callback()
def jobs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=MAX_LISTED, help="At most this many.")] = 50,
    before: Annotated[
        int | None, typer.Option("--before", min=1, help="Only jobs older than this one (the next page).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON for machines instead of a table.")
    ] = False,
) -> None:
    """List the newest jobs first (a job whose process died is marked interrupted first, with an
    audit entry naming it)."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from facetrace.cli.render import console, print_json

    listed = governance(ctx).jobs.listing(limit=limit, before=before)
    if as_json:
        print_json([asdict(job) for job in listed])
        return
    table = Table(title="Jobs (newest first)")
    table.add_column("id", no_wrap=True)
    table.add_column("state", no_wrap=True)
    for column in ("kind", "source", "what", "by", "created (UTC)", "new images", "faces", "why"):
        table.add_column(column, overflow="fold")
    for job in listed:
        table.add_row(
            str(job.id),
            job.state.value,
            job.kind,
            job.source,
            job.folder or "—",
            job.started_by,
            job.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            f"{job.progress.new_images:,}",
            f"{job.progress.faces:,}",
            job.error or "",
        )
    console.print(table)


@jobs_app.command("cancel")
def cancel(ctx: typer.Context, job_id: Annotated[int, typer.Argument(help="The job to stop.")]) -> None:
    """Ask a job to stop, whichever process runs it: a queued one at once, a running one at its next
    safe point (recorded in the audit log)."""
    from facetrace.cli.render import console

    job = governance(ctx).jobs.cancel(job_id)
    console.print(
        f"Job {job.id} ({job.kind} of {job.source}): {job.state.value}, asked to stop.", highlight=False
    )
