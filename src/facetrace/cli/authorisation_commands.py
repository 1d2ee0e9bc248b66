"""``facetrace authorisation``: leave to search, requested, granted or refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from facetrace.cli.state import governance

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

    reference = governance(ctx).authorisations.request(case_ref, purpose)
    console.print(f"Requested {reference} for case {case_ref}; give it to searches with --authorisation.")


@authorisation_app.command("grant")
def authorisation_grant(
    ctx: typer.Context, reference: str, note: Annotated[str | None, typer.Option("--note")] = None
) -> None:
    """Grant a pending request of your unit (not your own)."""
    from facetrace.cli.render import console

    governance(ctx).authorisations.decide(reference, grant=True, note=note)
    console.print(f"{reference} granted.")


@authorisation_app.command("refuse")
def authorisation_refuse(
    ctx: typer.Context, reference: str, note: Annotated[str, typer.Option("--note", help="Why.")]
) -> None:
    """Refuse a pending request; results kept from searches that already ran on it are deleted."""
    from facetrace.cli.render import console

    deleted = governance(ctx).authorisations.decide(reference, grant=False, note=note)
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

    made = governance(ctx).authorisations.record_external(
        case_ref, authority, reference, decided_on.replace(tzinfo=UTC)
    )
    console.print(f"Recorded {made}: granted by {authority} ({reference}, {decided_on:%Y-%m-%d}).")


@authorisation_app.command("list")
def authorisation_list(
    ctx: typer.Context,
    pending: Annotated[bool, typer.Option("--pending", help="Only undecided ones.")] = False,
) -> None:
    """Authorisations you may see: your own requests, your unit's as a supervisor, all as auditor or DPO."""
    from rich.table import Table

    from facetrace.cli.render import console

    table = Table(title="Authorisations")
    for column in ("reference", "case", "status", "requested by", "requested at", "decided by", "expires"):
        table.add_column(column)
    for a in governance(ctx).authorisations.listing(pending_only=pending):
        table.add_row(
            a.reference,
            a.case_ref,
            a.status,
            a.requested_by,
            a.requested_at[:16],
            a.decided_by or "—",
            (a.expires_at or "—")[:16],
        )
    console.print(table)
