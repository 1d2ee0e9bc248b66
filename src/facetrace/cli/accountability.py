"""``facetrace audit|user|token``: the accountability commands, over the governance service."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from facetrace.cli.state import governance
from facetrace.errors import FacetraceError
from facetrace.governance.erasure import ErasureScope

audit_app = typer.Typer(help="Verify and export the hash-chained audit log.", no_args_is_help=True)
user_app = typer.Typer(help="User accounts and their roles.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (stored hashed; shown once).", no_args_is_help=True)
retention_app = typer.Typer(help="Delete what sources gave once their retention period is over.")
#: Top-level commands (``erase``, ``purge``), merged into the main app.
erasure_app = typer.Typer()


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    export_file: Annotated[
        Path | None,
        typer.Option("--export", exists=True, dir_okay=False, help="Check an exported JSON file instead."),
    ] = None,
) -> None:
    """Check every entry's hash and link; report the first broken entry (exit 1 if any)."""
    from facetrace.cli.render import console
    from facetrace.governance import audit

    if export_file is not None:
        report = audit.check_export(json.loads(export_file.read_text()))
    else:
        report = governance(ctx).verify_audit()
    if report.ok:
        head = f"head {report.head_seq} {report.head_hash}"
        console.print(f"[green]audit log intact[/]: {report.entries:,} entries, {head}")
        return
    console.print(f"[red]audit log broken at entry {report.first_broken}[/]: {report.problem}")
    raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the export.")],
    first: Annotated[int, typer.Option("--from", min=1, help="First entry (sequence number).")] = 1,
    last: Annotated[int | None, typer.Option("--to", min=1, help="Last entry (default: the newest).")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="json (checkable) or csv (for spreadsheets).")
    ] = "json",
) -> None:
    """Write a range of the log with the head hash, so an outside body can check it later."""
    from facetrace.cli.render import console
    from facetrace.governance.audit import FIELDS

    if fmt not in ("json", "csv"):
        raise FacetraceError("--format must be json or csv")
    document = governance(ctx).export_audit(first, last)
    if fmt == "json":
        out.write_text(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FIELDS)
        writer.writeheader()
        for entry in document["entries"]:
            writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in entry.items()})
        out.write_text(buffer.getvalue())
    head = document["head"]
    console.print(
        f"Wrote {len(document['entries']):,} entries to {out}; head of the log: entry {head['seq']} "
        f"{head['hash']}. Keep the head hash: it proves later that nothing before it was rewritten."
    )


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    name: str,
    role: Annotated[
        list[str], typer.Option("--role", "-r", help="admin, investigator, supervisor, dpo, auditor")
    ],
    unit: Annotated[
        str | None, typer.Option("--unit", help="The team or agency the user belongs to.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read a password for web log-in from standard input.")
    ] = False,
) -> None:
    """Create a user with one or more roles."""
    from facetrace.cli.render import console

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    governance(ctx).add_user(name, role, unit, password)
    console.print(f"Created user {name} ({', '.join(role)}{f', unit {unit}' if unit else ''}).")


@user_app.command("list")
def user_list(ctx: typer.Context) -> None:
    """Every user with roles and unit."""
    from rich.table import Table

    from facetrace.cli.render import console

    table = Table(title="Users")
    for column in ("name", "roles", "unit", "note"):
        table.add_column(column)
    for user in governance(ctx).users():
        note = "bootstrap operator" if user["bootstrap"] else ("disabled" if user["disabled"] else "")
        table.add_row(user["name"], ", ".join(user["roles"]), user["unit"] or "—", note)
    console.print(table)


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Whose token (an admin may create one for anybody).")],
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "cli",
    days: Annotated[int, typer.Option("--days", min=1, max=3650, help="Valid for this many days.")] = 90,
) -> None:
    """Create an API token; it is printed once (use it as FACETRACE_TOKEN or --token)."""
    from facetrace.cli.render import console

    issued = governance(ctx).issue_token(user, name, days)
    console.print(f"Token {issued.id} for {issued.user}, valid until {issued.expires_at}:", highlight=False)
    print(issued.token)


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: int) -> None:
    """Revoke a token at once."""
    from facetrace.cli.render import console

    governance(ctx).revoke_token(token_id)
    console.print(f"Token {token_id} revoked.")


def run_erasure(ctx: typer.Context, scope: ErasureScope, reason: str | None, execute: bool) -> None:
    """Dry run (the default) or execution of an erasure, for ``erase`` and ``purge``."""
    from facetrace.cli.render import console, key_value_table, print_json

    gov = governance(ctx)
    if not execute:
        result = gov.erasure_plan(scope)
        console.print(key_value_table("Dry run: this would be deleted", result.counts()))
        for location in result.locations[:50]:
            console.print(f"  {location}", highlight=False)
        if len(result.locations) > 50:
            console.print(f"  … and {len(result.locations) - 50:,} more places")
        console.print("Nothing was deleted. Run again with --execute (and --reason) to delete.")
        return
    if not reason:
        raise FacetraceError("--execute needs --reason (e.g. the rights request or order reference)")
    print_json(gov.erase(scope, reason))


@erasure_app.command("erase")
def erase(
    ctx: typer.Context,
    face_id: Annotated[list[int] | None, typer.Option("--face-id", help="A face id (repeatable).")] = None,
    url: Annotated[
        list[str] | None, typer.Option("--url", help="An image or page URL, or a file path (repeatable).")
    ] = None,
    source: Annotated[list[str] | None, typer.Option("--source", help="A source, then blocked.")] = None,
    photo: Annotated[
        Path | None,
        typer.Option(
            "--photo", exists=True, dir_okay=False, help="The person's photo (used in memory only)."
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why: the request or order reference.")
    ] = None,
    execute: Annotated[bool, typer.Option("--execute", help="Delete for real (default: dry run).")] = False,
) -> None:
    """Erase faces, images or sources for good (GDPR art. 17); a dry run unless --execute."""
    face_ids = list(face_id or [])
    if photo is not None:
        from facetrace.cli.state import settings_of
        from facetrace.vision.factory import build_analyzer

        matches = governance(ctx).faces_of_person(build_analyzer(settings_of(ctx)), photo.read_bytes())
        if not matches:
            raise FacetraceError("no face in the gallery matches the photo above the subject threshold")
        face_ids += matches
    scope = ErasureScope(face_ids=tuple(face_ids), locations=tuple(url or ()), sources=tuple(source or ()))
    run_erasure(ctx, scope, reason, execute)


@erasure_app.command("purge")
def purge(
    ctx: typer.Context,
    jurisdiction: Annotated[
        str, typer.Option("--jurisdiction", help="Country code of the sources, e.g. FR.")
    ],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why: the order or decision reference.")
    ] = None,
    execute: Annotated[bool, typer.Option("--execute", help="Delete for real (default: dry run).")] = False,
) -> None:
    """Delete all that a jurisdiction's sources gave and block them; a dry run unless --execute."""
    run_erasure(ctx, ErasureScope(jurisdiction=jurisdiction.upper()), reason, execute)


@retention_app.command("run")
def retention_run(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what has expired.")] = False,
) -> None:
    """Delete every sighting older than its source's retention period, and images nobody else saw."""
    run_erasure(ctx, ErasureScope(expired=True), "retention period over", execute=not dry_run)


authorisation_app = typer.Typer(
    help="Authorisations for searches: request, grant, refuse.", no_args_is_help=True
)


@authorisation_app.command("request")
def authorisation_request(
    ctx: typer.Context,
    case_ref: Annotated[str, typer.Option("--case-ref", help="The case the searches will serve.")],
    purpose: Annotated[str, typer.Option("--purpose", help="Why searches are necessary for it.")],
) -> None:
    """Ask your supervisor for leave to search for a case."""
    from facetrace.cli.render import console

    reference = governance(ctx).request_authorisation(case_ref, purpose)
    console.print(f"Requested {reference} for case {case_ref}; give it to searches with --authorisation.")


@authorisation_app.command("grant")
def authorisation_grant(
    ctx: typer.Context, reference: str, note: Annotated[str | None, typer.Option("--note")] = None
) -> None:
    """Grant a pending request of your unit (not your own)."""
    from facetrace.cli.render import console

    governance(ctx).decide_authorisation(reference, grant=True, note=note)
    console.print(f"{reference} granted.")


@authorisation_app.command("refuse")
def authorisation_refuse(
    ctx: typer.Context, reference: str, note: Annotated[str, typer.Option("--note", help="Why.")]
) -> None:
    """Refuse a pending request; results kept from searches that already ran on it are deleted."""
    from facetrace.cli.render import console

    deleted = governance(ctx).decide_authorisation(reference, grant=False, note=note)
    console.print(f"{reference} refused; results of {deleted} search(es) deleted.")


@authorisation_app.command("external")
def authorisation_external(
    ctx: typer.Context,
    case_ref: Annotated[str, typer.Option("--case-ref")],
    authority: Annotated[str, typer.Option("--authority", help="e.g. the court or prosecutor.")],
    reference: Annotated[str, typer.Option("--reference", help="The authority's own reference.")],
    decided_on: Annotated[datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="YYYY-MM-DD")],
) -> None:
    """Record an authorisation granted by an outside judicial or administrative authority."""
    from facetrace.cli.render import console

    made = governance(ctx).record_external_authorisation(
        case_ref, authority, reference, decided_on.replace(tzinfo=UTC)
    )
    console.print(f"Recorded {made}: granted by {authority} ({reference}, {decided_on:%Y-%m-%d}).")


@authorisation_app.command("list")
def authorisation_list(
    ctx: typer.Context,
    pending: Annotated[bool, typer.Option("--pending", help="Only undecided ones.")] = False,
) -> None:
    """Authorisations you may see: your own requests, or your unit's as a supervisor."""
    from rich.table import Table

    from facetrace.cli.render import console

    table = Table(title="Authorisations")
    for column in ("reference", "case", "status", "requested by", "requested at", "decided by"):
        table.add_column(column)
    for a in governance(ctx).authorisations(pending_only=pending):
        table.add_row(
            a["reference"],
            a["case_ref"],
            a["status"],
            a["requested_by"],
            a["requested_at"][:16],
            a["decided_by"] or "—",
        )
    console.print(table)


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

    rows = governance(ctx).usage_report(year)
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"Searches run in {year}, per month", box=box.SIMPLE_HEAD, padding=(0, 0, 0, 2))
    table.add_column("unit", no_wrap=True)
    table.add_column("user", no_wrap=True)
    for column in "JFMAMJJASOND":
        table.add_column(column, justify="right")
    for column in ("run", "refused", "cases"):
        table.add_column(column, justify="right", min_width=len(column))
    for row in rows:
        months = [str(n) if n else "·" for n in row["months"].values()]
        table.add_row(
            row["unit"], row["user"], *months, str(row["searches"]), str(row["refused"]), str(row["cases"])
        )
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

    for path in governance(ctx).annual_report(year, out):
        console.print(f"wrote {path}", highlight=False)


@report_app.command("processing")
def report_processing(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write JSON here instead of printing.")
    ] = None,
) -> None:
    """Records of processing (GDPR art. 30): purposes, data, recipients, sources, retention."""
    from facetrace.cli.render import console, print_json

    records = governance(ctx).records_of_processing()
    if out is None:
        print_json(records)
        return
    out.write_text(json.dumps(records, indent=2, ensure_ascii=False))
    console.print(f"wrote {out}", highlight=False)


rights_app = typer.Typer(help="Data-subject requests: access, erasure, objection.", no_args_is_help=True)


@rights_app.command("file")
def rights_file(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="access, erasure or objection")],
    url: Annotated[list[str] | None, typer.Option("--url", help="An image or page URL (repeatable).")] = None,
    photo: Annotated[
        Path | None,
        typer.Option("--photo", exists=True, dir_okay=False, help="The person's photo (matched in memory)."),
    ] = None,
    contact: Annotated[str | None, typer.Option("--contact", help="How to answer the person.")] = None,
    consent_template: Annotated[
        bool,
        typer.Option("--consent-template", help="Objection: the person consents to keeping one template."),
    ] = False,
) -> None:
    """Record a request received (by mail, at the desk); the answer is due in a month."""
    from facetrace.cli.render import console
    from facetrace.cli.state import settings_of
    from facetrace.vision.factory import build_analyzer

    analyzer = build_analyzer(settings_of(ctx)) if photo is not None else None
    reference = governance(ctx).file_rights_request(
        kind,
        urls=list(url or ()),
        photo=photo.read_bytes() if photo else None,
        analyzer=analyzer,
        contact=contact,
        consent_to_keep_template=consent_template,
    )
    console.print(f"Filed {reference} ({kind}).")


@rights_app.command("list")
def rights_list(
    ctx: typer.Context,
    include_closed: Annotated[bool, typer.Option("--all", help="Closed requests too.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The queue, overdue first."""
    from rich.table import Table

    from facetrace.cli.render import console, print_json

    queue = governance(ctx).rights_queue(include_closed)
    if as_json:
        print_json(queue)
        return
    table = Table(title="Rights requests")
    for column in ("reference", "kind", "status", "received", "due", ""):
        table.add_column(column)
    for r in queue:
        late = "[red]OVERDUE[/]" if r["overdue"] else ""
        table.add_row(r["reference"], r["kind"], r["status"], r["received_at"][:10], r["due_at"][:10], late)
    console.print(table)


@rights_app.command("verify")
def rights_verify(
    ctx: typer.Context, reference: str, note: Annotated[str | None, typer.Option("--note")] = None
) -> None:
    """Mark a request verified: identity and scope checked."""
    governance(ctx).move_rights_request(reference, "verified", note)


@rights_app.command("refuse")
def rights_refuse(ctx: typer.Context, reference: str, note: Annotated[str, typer.Option("--note")]) -> None:
    """Refuse a request, with the reason the person will be given."""
    governance(ctx).move_rights_request(reference, "refused", note)


@rights_app.command("execute")
def rights_execute(ctx: typer.Context, reference: str) -> None:
    """Answer a verified request: the access report, or erasure (and blocks, for an objection)."""
    from facetrace.cli.render import print_json

    print_json(governance(ctx).execute_rights_request(reference))


@rights_app.command("block")
def rights_block(
    ctx: typer.Context,
    url_prefix: Annotated[
        str | None, typer.Option("--url-prefix", help="Never collect URLs starting so.")
    ] = None,
    domain: Annotated[str | None, typer.Option("--domain", help="Never collect from this domain.")] = None,
) -> None:
    """Add a URL prefix or a domain to the do-not-collect list."""
    governance(ctx).block_collection(url_prefix=url_prefix, domain=domain)
