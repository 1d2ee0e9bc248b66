"""Write reports as the files an outside body reads: JSON, CSV of the usage table, a chart (SVG), HTML."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from facetrace.core.atomic import atomic_write_text
from facetrace.governance.reports import MONTHS, usage_chart_svg

_templates = Environment(
    loader=PackageLoader("facetrace.governance", "templates"), autoescape=select_autoescape(["html", "j2"])
)


def usage_csv(usage: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["unit", "user", *MONTHS, "searches", "refused", "failed", "with_authorisation", "cases"])
    for row in usage:
        writer.writerow(
            [
                row["unit"],
                row["user"],
                *row["months"].values(),
                row["searches"],
                row["refused"],
                row["failed"],
                row["with_authorisation"],
                row["cases"],
            ]
        )
    return buffer.getvalue()


def write_annual(report: dict[str, Any], folder: Path) -> list[Path]:
    """report.json, usage.csv, searches.svg and report.html (the chart drawn inline) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    chart = usage_chart_svg(report)
    title = f"Facetrace annual usage report {report['year']}" + (
        f" — unit {report['unit']}" if report["unit"] else ""
    )
    # The chart escapes every text it draws, so it goes into the page as it is.
    html = _templates.get_template("report.html.j2").render(
        title=title, report=report, months=MONTHS, chart=Markup(chart)
    )
    paths = {name: folder / name for name in ("report.json", "usage.csv", "searches.svg", "report.html")}
    atomic_write_text(paths["report.json"], json.dumps(report, indent=2, ensure_ascii=False))
    atomic_write_text(paths["usage.csv"], usage_csv(report["usage"]))
    atomic_write_text(paths["searches.svg"], chart)
    atomic_write_text(paths["report.html"], html)
    return list(paths.values())


def write_records(records: dict[str, Any], folder: Path) -> list[Path]:
    """records.json and records.html in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "records.json", folder / "records.html"]
    atomic_write_text(paths[0], json.dumps(records, indent=2, ensure_ascii=False))
    atomic_write_text(paths[1], _templates.get_template("records.html.j2").render(records=records))
    return paths
