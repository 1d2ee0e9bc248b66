"""``facetrace source``: the registry of sources Facetrace may collect from."""

from __future__ import annotations

from typing import Annotated

import typer

from facetrace.cli.numbers import finite
from facetrace.cli.state import governance

source_app = typer.Typer(
    help="Registered sources: legal basis, jurisdiction, seeds, limits.", no_args_is_help=True
)


@source_app.command("add")
def source_add(
    ctx: typer.Context,
    name: str,
    legal_basis: Annotated[str, typer.Option("--legal-basis", help="Why collecting this source is lawful.")],
    jurisdiction: Annotated[str, typer.Option("--jurisdiction", help="Country code, e.g. FR.")],
    kind: Annotated[str, typer.Option("--kind", help="local, urls, website or sitemap.")] = "local",
    seed: Annotated[
        list[str] | None, typer.Option("--seed", help="Where a crawl starts (repeatable).")
    ] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            help="HOST, HOST:PORT, HOST/PATH or https://HOST:PORT/PATH a crawl may fetch "
            "(default: the seeds' hosts, with their ports).",
        ),
    ] = None,
    purpose: Annotated[str | None, typer.Option("--purpose", help="What the collection is for.")] = None,
    retention_days: Annotated[int | None, typer.Option("--retention-days", min=1)] = None,
    max_pages: Annotated[int | None, typer.Option("--max-pages", min=1)] = None,
    max_depth: Annotated[int | None, typer.Option("--max-depth", min=1)] = None,
    rate: Annotated[
        float | None, typer.Option("--rate", callback=finite, help="Requests per second per host.")
    ] = None,
    allow_private_network: Annotated[
        bool,
        typer.Option(
            "--allow-private-network",
            help="An intranet source: its crawls may reach loopback, private and link-local addresses.",
        ),
    ] = False,
) -> None:
    """Register a source (admin). Social networks are refused; there is no crawl-the-web mode."""
    from facetrace.cli.render import console
    from facetrace.collect.sources import SourceSpec

    added = governance(ctx).sources.add(
        SourceSpec(
            name=name,
            kind=kind,
            legal_basis=legal_basis,
            jurisdiction=jurisdiction,
            purpose=purpose,
            seeds=tuple(seed or ()),
            allowed=tuple(allow or ()),
            retention_days=retention_days,
            max_pages=max_pages,
            max_depth=max_depth,
            rate_per_s=rate,
            allow_private_network=allow_private_network,
        )
    )
    console.print(f"Registered source {name} ({added.kind}, {added.jurisdiction}).", highlight=False)


@source_app.command("list")
def source_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every registered source with its status."""
    from rich.table import Table

    from facetrace.cli.render import console, print_json

    rows = governance(ctx).sources.listing()
    if as_json:
        print_json([s.model_dump() for s in rows])
        return
    table = Table(title="Sources")
    for column in ("name", "kind", "status", "jurisdiction", "legal basis", "private network", "sightings"):
        table.add_column(column)
    for s in rows:
        table.add_row(
            s.name,
            s.kind,
            s.status,
            s.jurisdiction or "—",
            s.legal_basis or "—",
            "allowed" if s.allow_private_network else "—",
            str(s.sightings),
        )
    console.print(table)


@source_app.command("show")
def source_show(ctx: typer.Context, name: str) -> None:
    """Everything registered about one source."""
    from facetrace.cli.render import console, key_value_table

    details = governance(ctx).sources.get(name).model_dump()
    console.print(
        key_value_table(f"Source {name}", {k: v for k, v in details.items() if v not in (None, [])})
    )


@source_app.command("pause")
def source_pause(ctx: typer.Context, name: str) -> None:
    """Stop collecting from a source until it is resumed."""
    governance(ctx).sources.pause(name)


@source_app.command("resume")
def source_resume(ctx: typer.Context, name: str) -> None:
    """Collect from a paused source again."""
    governance(ctx).sources.pause(name, paused=False)


@source_app.command("private-network")
def source_private_network(
    ctx: typer.Context,
    name: str,
    allow: Annotated[
        bool, typer.Option("--allow/--refuse", help="Let its crawls reach private addresses, or stop them.")
    ] = True,
) -> None:
    """Let a source's crawls reach loopback, private and link-local addresses (an intranet), or not."""
    governance(ctx).sources.set_private_network(name, allowed=allow)


@source_app.command("remove")
def source_remove(ctx: typer.Context, name: str) -> None:
    """Unregister a source that holds nothing (a DPO erases what it holds first)."""
    governance(ctx).sources.remove(name)


def crawl(
    ctx: typer.Context,
    name: str,
    max_pages: Annotated[
        int | None, typer.Option("--max-pages", min=1, help="Stop after this many pages.")
    ] = None,
    rate: Annotated[
        float | None, typer.Option("--rate", callback=finite, help="Requests per second per host.")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-w", min=1)] = None,
    delete_gone: Annotated[
        bool, typer.Option("--delete-gone", help="After a complete crawl, delete what the source took down.")
    ] = False,
) -> None:
    """Collect a registered 'website' or 'urls' source: only where it allows, robots rules kept."""
    from facetrace.cli.render import console, crawl_progress, key_value_table

    with crawl_progress() as on_progress:
        crawled, ingested = governance(ctx).sources.crawl(
            name,
            max_pages=max_pages,
            rate=rate,
            workers=workers,
            on_progress=on_progress,
            delete_gone=delete_gone,
        )
    console.print(
        key_value_table(
            f"Crawl of {name}",
            {
                "pages fetched": crawled.pages,
                "sitemaps read": crawled.sitemaps,
                "images fetched": crawled.images,
                "refused by robots.txt": crawled.refused_by_robots,
                "images withheld by their page (noimageai…)": crawled.images_withheld_by_page,
                "links refused for their scheme (javascript:…)": crawled.urls_refused_by_scheme.total(),
                "new images analysed": ingested.new_images,
                "already in the catalog": ingested.known_images,
                "faces found": ingested.faces,
                "images unchanged (HTTP 304, last seen updated)": crawled.images_unchanged,
                "images fetched again (changed, or no validators)": crawled.images_refetched,
                "gone from the source since the last crawl": crawled.gone,
                "crawl": "complete" if crawled.completed else "stopped at the page limit: run again to go on",
                "fetch errors": len(crawled.errors),
                "images that failed analysis": len(ingested.failures),
            },
        )
    )
    for url, problem in (crawled.errors + ingested.failures)[:20]:
        console.print(f"  {url}: {problem}", highlight=False)
