"""``facetrace erase|purge|retention|rights``: deletion and data-subject requests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facetrace.cli.state import governance
from facetrace.core.errors import FacetraceError

if TYPE_CHECKING:
    from facetrace.governance.erasure import ErasureScope

retention_app = typer.Typer(help="Delete what sources gave once their retention period is over.")


#: Top-level commands (``erase``, ``purge``), merged into the main app.
erasure_app = typer.Typer()


def run_erasure(ctx: typer.Context, scope: ErasureScope, reason: str | None, execute: bool) -> None:
    """Dry run (the default) or execution of an erasure, for ``erase`` and ``purge``."""
    from facetrace.cli.render import console, key_value_table, print_json

    gov = governance(ctx)
    if not execute:
        result = gov.erasure.plan(scope)
        console.print(key_value_table("Dry run: this would be deleted", result.counts()))
        for location in result.locations[:50]:
            console.print(f"  {location}", highlight=False)
        if len(result.locations) > 50:
            console.print(f"  … and {len(result.locations) - 50:,} more places")
        console.print("Nothing was deleted. Run again with --execute (and --reason) to delete.")
        return
    if not reason:
        raise FacetraceError("--execute needs --reason (e.g. the rights request or order reference)")
    print_json(gov.erasure.erase(scope, reason))


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
    from facetrace.governance.erasure import ErasureScope

    face_ids = list(face_id or [])
    if photo is not None:
        from facetrace.cli.state import settings_of
        from facetrace.vision.factory import build_analyzer

        matches = governance(ctx).erasure.faces_of_person(
            build_analyzer(settings_of(ctx)), photo.read_bytes()
        )
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
    from facetrace.governance.erasure import ErasureScope

    run_erasure(ctx, ErasureScope(jurisdiction=jurisdiction.upper()), reason, execute)


certificate_app = typer.Typer(help="Deletion certificates: check a URL against one.", no_args_is_help=True)


@certificate_app.command("check")
def erasure_check(
    ctx: typer.Context,
    certificate: Annotated[str, typer.Argument(help="The certificate's reference, ERASURE-….")],
    place: Annotated[str, typer.Argument(help="A URL or file path, exactly as it was collected.")],
) -> None:
    """Say whether an erasure certificate covers a URL (its keyed hash is in it); exit 1 if not."""
    from facetrace.cli.render import console

    answer = governance(ctx).erasure.check(certificate, place)
    if answer is None:
        console.print(f"{certificate} does not cover this place.", highlight=False)
        raise typer.Exit(1)
    explained = {
        "erased": "the images seen there were erased",
        "face removed": "a face was erased from the image seen there",
    }
    console.print(f"{certificate} covers this place: {explained[answer]}.", highlight=False)


@retention_app.command("run")
def retention_run(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what has expired.")] = False,
) -> None:
    """Delete every sighting older than its source's retention period, and images nobody else saw;
    expire rights requests left unverified past their deadline, and delete old access reports."""
    from facetrace.governance.erasure import ErasureScope

    run_erasure(ctx, ErasureScope(expired=True), "retention period over", execute=not dry_run)
    if not dry_run:
        from facetrace.cli.render import console

        done = governance(ctx).rights.housekeeping()
        console.print(
            f"Rights requests: {done['requests_expired']} expired unverified "
            f"({done['templates_deleted']} template(s) deleted), "
            f"{done['reports_deleted']} access report(s) deleted.",
            highlight=False,
        )


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
    filed = governance(ctx).rights.file(
        kind,
        urls=list(url or ()),
        photo=photo.read_bytes() if photo else None,
        analyzer=analyzer,
        contact=contact,
        consent_to_keep_template=consent_template,
    )
    console.print(
        f"Filed {filed.reference} ({kind}). Its code, for the person to follow it on the portal "
        f"(shown only now): {filed.code}",
        highlight=False,
    )


@rights_app.command("list")
def rights_list(
    ctx: typer.Context,
    include_closed: Annotated[bool, typer.Option("--all", help="Closed requests too.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The queue, overdue first."""
    from rich.table import Table

    from facetrace.cli.render import console, print_json

    queue = governance(ctx).rights.queue(include_closed)
    if as_json:
        print_json([r.model_dump() for r in queue])
        return
    table = Table(title="Rights requests")
    for column in ("reference", "kind", "status", "received", "due", ""):
        table.add_column(column)
    for r in queue:
        late = "[red]OVERDUE[/]" if r.overdue else ""
        table.add_row(r.reference, r.kind, r.status, r.received_at[:10], r.due_at[:10], late)
    console.print(table)


@rights_app.command("verify")
def rights_verify(
    ctx: typer.Context, reference: str, note: Annotated[str | None, typer.Option("--note")] = None
) -> None:
    """Mark a request verified: identity and scope checked."""
    governance(ctx).rights.move(reference, "verified", note)


@rights_app.command("refuse")
def rights_refuse(ctx: typer.Context, reference: str, note: Annotated[str, typer.Option("--note")]) -> None:
    """Refuse a request, with the reason the person will be given."""
    governance(ctx).rights.move(reference, "refused", note)


@rights_app.command("execute")
def rights_execute(ctx: typer.Context, reference: str) -> None:
    """Answer a verified request: the access report, or erasure (and blocks, for an objection)."""
    from facetrace.cli.render import print_json

    print_json(governance(ctx).rights.execute(reference).as_json())


@rights_app.command("block")
def rights_block(
    ctx: typer.Context,
    url_prefix: Annotated[
        str | None, typer.Option("--url-prefix", help="Never collect URLs starting so.")
    ] = None,
    domain: Annotated[str | None, typer.Option("--domain", help="Never collect from this domain.")] = None,
) -> None:
    """Add a URL prefix or a domain to the do-not-collect list."""
    governance(ctx).rights.block_collection(url_prefix=url_prefix, domain=domain)
