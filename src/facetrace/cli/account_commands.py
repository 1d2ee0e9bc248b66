"""``facetrace audit|unit|user|token``: the audit log, units, accounts and tokens, over the governance
service."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from facetrace.cli.state import governance, settings_of
from facetrace.core.errors import FacetraceError

audit_app = typer.Typer(
    help="Verify, export and anchor the signed, hash-chained audit log.", no_args_is_help=True
)


#: Where a password typed on the command line came from, as the audit log and the throttle record it.
COMMAND_LINE = "command line"

unit_app = typer.Typer(help="Units (teams or agencies) that users belong to.", no_args_is_help=True)


user_app = typer.Typer(help="User accounts, their roles and life cycle.", no_args_is_help=True)


token_app = typer.Typer(help="API tokens (stored hashed; shown once).", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    export_file: Annotated[
        Path | None,
        typer.Option("--export", exists=True, dir_okay=False, help="Check an exported JSON file instead."),
    ] = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            exists=True,
            dir_okay=False,
            help="Trust the key(s) in this PEM file (from 'facetrace audit public-key') instead of the "
            "key file's; repeat for several.",
        ),
    ] = None,
    anchor_file: Annotated[
        Path | None,
        typer.Option(
            "--anchor",
            exists=True,
            dir_okay=False,
            help="A signed head from 'facetrace audit anchor': the log must still hold that entry.",
        ),
    ] = None,
) -> None:
    """Check every entry's hash, link and signature; report the first broken entry (exit 1 if any)."""
    from facetrace.cli.render import console
    from facetrace.governance import audit, signing

    keys = [k for path in public_key or [] for k in signing.read_public_keys(path.read_bytes())] or None
    anchor = audit.read_anchor(json.loads(anchor_file.read_text())) if anchor_file else None
    if export_file is not None:
        report = audit.check_export(json.loads(export_file.read_text()), keys, anchor)
    else:
        report = governance(ctx).audit.verify(keys, anchor)
    source = "the given public key(s)" if keys else "the key file" if export_file is None else "the export"
    trusted = ", ".join(k[:16] for k in report.trusted_keys) or "none"
    console.print(f"Trusted keys ({source}): {trusted}", highlight=False)
    if report.note:
        console.print(f"[yellow]Note[/]: {report.note}")
    if report.ok:
        head = f"head {report.head_seq} {report.head_hash}"
        signed = f"{report.signed:,} signed"
        anchored = f"; still holds the anchored entry {report.anchor_seq}" if report.anchor_seq else ""
        console.print(f"[green]audit log intact[/]: {report.entries:,} entries ({signed}), {head}{anchored}")
        return
    where = f" at entry {report.first_broken}" if report.first_broken is not None else ""
    console.print(f"[red]audit log broken{where}[/]: {report.problem}")
    raise typer.Exit(1)


@audit_app.command("anchor")
def audit_anchor(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the signed head.")],
) -> None:
    """Write a small signed head of the log (sequence number, hash, time, key). Keep it elsewhere:
    'audit verify --anchor FILE' later shows whether entries up to it were cut off or rewritten."""
    from facetrace.cli.render import console

    anchor = governance(ctx).audit.anchor()
    out.write_text(json.dumps(anchor.model_dump(), indent=2) + "\n")
    console.print(f"Wrote the anchor of entry {anchor.seq} ({anchor.hash}) to {out}.")


@audit_app.command("public-key")
def audit_public_key(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the PEM here instead of printing it.")
    ] = None,
) -> None:
    """Print the public key the log is signed with (PEM), for anyone to verify exports without a
    secret; every earlier key, with the entries it signed, is listed too."""
    from facetrace.cli.render import console

    keys = governance(ctx).audit.public_keys()
    signing_key = keys.signing_key
    for key in keys.keys:
        now = " (signs now)" if key.key_id == signing_key.key_id else ""
        last = key.last_seq if key.last_seq is not None else "…"
        console.print(f"key {key.key_id}: entries {key.first_seq}–{last}{now}", highlight=False)
    if out is None:
        print(signing_key.pem, end="")
        return
    out.write_text(signing_key.pem)
    console.print(f"Wrote the public key {signing_key.key_id} to {out}.")


@audit_app.command("rotate-key")
def audit_rotate_key(ctx: typer.Context) -> None:
    """Replace the signing key (admin). The old private key is destroyed; the rotation entry, signed
    by the old key and countersigned by the new one, keeps old entries verifiable with either."""
    from facetrace.cli.render import console

    rotated = governance(ctx).audit.rotate_key()
    console.print(
        f"Entry {rotated.seq}: key {rotated.old_key_id} replaced by {rotated.new_key_id}. "
        "Publish the new public key ('facetrace audit public-key').",
        highlight=False,
    )


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
    document = governance(ctx).audit.export(first, last).document()
    if fmt == "json":
        out.write_text(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FIELDS)
        writer.writeheader()
        for entry in document["entries"]:
            writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in entry.items()})
        out.write_text(buffer.getvalue())
        # The sign-off a CSV cannot carry: the range, the link into it and the head hash.
        sign_off = {k: v for k, v in document.items() if k != "entries"}
        out.with_name(out.name + ".head.json").write_text(json.dumps(sign_off, indent=2))
    head = document["head"]
    console.print(
        f"Wrote {len(document['entries']):,} entries to {out}; head of the log: entry {head['seq']} "
        f"{head['hash']}. Keep the head hash: it proves later that nothing before it was rewritten."
    )


@unit_app.command("add")
def unit_add(ctx: typer.Context, name: str) -> None:
    """Create a unit (a name that differs from an existing one by case only is refused)."""
    from facetrace.cli.render import console

    console.print(f"Created unit {governance(ctx).accounts.add_unit(name)}.")


@unit_app.command("list")
def unit_list(ctx: typer.Context) -> None:
    """Every unit."""
    for name in governance(ctx).accounts.units():
        print(name)


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    name: str,
    role: Annotated[
        list[str], typer.Option("--role", "-r", help="admin, investigator, supervisor, dpo, auditor, monitor")
    ],
    unit: Annotated[
        str | None, typer.Option("--unit", help="An existing unit (facetrace unit add creates one).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read a password for logging in from standard input.")
    ] = False,
    service: Annotated[
        bool,
        typer.Option(
            "--service",
            help="A machine's account: investigator or monitor only, no password, admin-issued tokens.",
        ),
    ] = False,
) -> None:
    """Create a user with one or more roles, or a service account."""
    from facetrace.cli.render import console

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    governance(ctx).accounts.add_user(name, role, unit, password, service=service)
    kind = "service account" if service else "user"
    console.print(f"Created {kind} {name} ({', '.join(role)}{f', unit {unit}' if unit else ''}).")


@user_app.command("list")
def user_list(ctx: typer.Context) -> None:
    """Every user with roles and unit."""
    from rich.table import Table

    from facetrace.cli.render import console

    table = Table(title="Users")
    for column in ("name", "roles", "unit", "note"):
        table.add_column(column)
    for user in governance(ctx).accounts.users():
        notes = [
            label
            for label, key in (
                ("service account", "service"),
                ("disabled", "disabled"),
                ("must change password", "must_change_password"),
                ("old bootstrap row", "bootstrap"),
            )
            if getattr(user, key)
        ]
        table.add_row(user.name, ", ".join(user.roles), user.unit or "—", ", ".join(notes))
    console.print(table)


@user_app.command("disable")
def user_disable(ctx: typer.Context, name: str) -> None:
    """Disable a user: their tokens stop working and their web logins end at once."""
    from facetrace.cli.render import console

    governance(ctx).accounts.set_disabled(name, disabled=True)
    console.print(f"User {name} disabled.")


@user_app.command("enable")
def user_enable(ctx: typer.Context, name: str) -> None:
    """Re-enable a disabled user."""
    from facetrace.cli.render import console

    governance(ctx).accounts.set_disabled(name, disabled=False)
    console.print(f"User {name} enabled.")


@user_app.command("roles")
def user_roles(
    ctx: typer.Context,
    name: str,
    role: Annotated[list[str], typer.Option("--role", "-r", help="The roles the user holds from now on.")],
) -> None:
    """Replace a user's roles."""
    from facetrace.cli.render import console

    governance(ctx).accounts.set_roles(name, role)
    console.print(f"User {name} now holds: {', '.join(role)}.")


@user_app.command("unit")
def user_unit(
    ctx: typer.Context,
    name: str,
    unit: Annotated[str | None, typer.Argument(help="An existing unit; leave out for none.")] = None,
) -> None:
    """Move a user to another unit (or to none)."""
    from facetrace.cli.render import console

    governance(ctx).accounts.set_unit(name, unit)
    console.print(f"User {name} is now in {f'unit {unit}' if unit else 'no unit'}.")


@user_app.command("reset-password")
def user_reset_password(ctx: typer.Context, name: str) -> None:
    """Give a user a temporary password (printed once) that they must change at their next login."""
    from facetrace.cli.render import console

    temporary = governance(ctx).accounts.reset_password(name)
    console.print(f"Temporary password for {name} (hand it over; it opens only its own change):")
    print(temporary)


@user_app.command("password")
def user_password(ctx: typer.Context, name: str) -> None:
    """Change one's own password: the current one, then the new one, on two lines of standard input."""
    from facetrace.cli.render import console
    from facetrace.governance.services.accounts import change_password
    from facetrace.store.engine import open_catalog

    current, new = (sys.stdin.readline().rstrip("\n") for _ in range(2))
    settings = settings_of(ctx)
    change_password(settings, open_catalog(settings.catalog_url), name, current, new, COMMAND_LINE)
    console.print(f"Password of {name} changed.")


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Whose token: one's own, or (admin) a service account's.")],
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "cli",
    days: Annotated[int, typer.Option("--days", min=1, max=3650, help="Valid for this many days.")] = 90,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Act as USER by their password, read from standard input."),
    ] = False,
) -> None:
    """Create an API token; it is printed once (use it as FACETRACE_TOKEN or --token)."""
    from facetrace.cli.render import console
    from facetrace.governance.service import Governance
    from facetrace.store.engine import open_catalog

    if password_stdin:
        settings = settings_of(ctx)
        password = sys.stdin.readline().rstrip("\n")
        sessions = open_catalog(settings.catalog_url)
        gov = Governance.with_password(settings, sessions, user, password, COMMAND_LINE)
    else:
        gov = governance(ctx)
    issued = gov.accounts.issue_token(user, name, days)
    console.print(f"Token {issued.id} for {issued.user}, valid until {issued.expires_at}:", highlight=False)
    print(issued.token)


@token_app.command("list")
def token_list(ctx: typer.Context, user: str) -> None:
    """Every token of a user, revoked and expired ones too (one's own, or anybody's for an admin)."""
    from rich.table import Table

    from facetrace.cli.render import console

    table = Table(title=f"Tokens of {user}")
    for column in ("id", "name", "created", "expires", "revoked"):
        table.add_column(column)
    for token in governance(ctx).accounts.tokens(user):
        row = (token.created_at, token.expires_at, token.revoked_at or "—")
        table.add_row(str(token.id), token.name, *row)
    console.print(table)


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: int) -> None:
    """Revoke a token at once."""
    from facetrace.cli.render import console

    governance(ctx).accounts.revoke_token(token_id)
    console.print(f"Token {token_id} revoked.")
