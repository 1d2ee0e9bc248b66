"""``facetrace report``: usage reports and records of processing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from facetrace.cli.state import governance

report_app = typer.Typer(
    help="Usage reports and records of processing, generated from the data.", no_args_is_help=True
)


YearOption = Annotated[int | None, typer.Option("--year", help="Calendar year (UTC; default: this one).")]


@report_app.command("usage")
def report_usage(
    ctx: typer.Context, year: YearOption = None, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Searches per unit, user and month (a supervisor sees their own unit)."""
    year = year or datetime.now(UTC).year
    from rich import box
    from rich.table import Table

    from facetrace.cli.render import console, print_json

    rows = governance(ctx).reports.usage(year)
    if as_json:
        print_json([row.model_dump() for row in rows])
        return
    table = Table(title=f"Searches run in {year}, per month", box=box.SIMPLE_HEAD, padding=(0, 0, 0, 2))
    table.add_column("unit", no_wrap=True)
    table.add_column("user", no_wrap=True)
    for column in "JFMAMJJASOND":
        table.add_column(column, justify="right")
    for column in ("run", "refused", "cases"):
        table.add_column(column, justify="right", min_width=len(column))
    for row in rows:
        months = [str(n) if n else "·" for n in row.months.values()]
        table.add_row(row.unit, row.user, *months, str(row.searches), str(row.refused), str(row.cases))
    console.print(table)


@report_app.command("annual")
def report_annual(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.html/.json, usage.csv, plot.")],
    year: YearOption = None,
) -> None:
    """The annual usage report (AI Act art. 26(10)): HTML, JSON, CSV and a plot."""
    year = year or datetime.now(UTC).year
    from facetrace.cli.render import console

    for path in governance(ctx).reports.annual(year, out):
        console.print(f"wrote {path}", highlight=False)


@report_app.command("processing")
def report_processing(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for records.json and .html.")
    ] = None,
) -> None:
    """Records of processing (GDPR art. 30): purposes, data, recipients, sources, retention."""
    from facetrace.cli.render import console, print_json
    from facetrace.governance.report_files import write_records

    records = governance(ctx).reports.records_of_processing()
    if out is None:
        print_json(records)
        return
    for path in write_records(records, out):
        console.print(f"wrote {path}", highlight=False)
