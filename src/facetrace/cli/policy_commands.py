"""``facetrace policy``: the deployment's policy, the same for every process that opens the catalog."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from facetrace.cli.state import governance

policy_app = typer.Typer(
    help="The deployment's policy (authorisations, quotas, offences, display limit): show, or set as admin.",
    no_args_is_help=True,
)


@policy_app.command("show")
def policy_show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """The policy the catalog holds: it binds every process, whatever its environment says."""
    from facetrace.cli.render import console, key_value_table, print_json

    policy = governance(ctx).policy.show().model_dump(mode="json")
    if as_json:
        print_json(policy)
        return
    rows = {name: ", ".join(value) if isinstance(value, list) else value for name, value in policy.items()}
    console.print(key_value_table("Deployment policy", rows))


@policy_app.command("set")
def policy_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The setting, as 'policy show' names it.")],
    value: Annotated[
        str,
        typer.Argument(help="The new value; a list as a JSON list or comma-separated; 'none' for no limit."),
    ],
) -> None:
    """Change one setting (admin); the change is audited with its old and new value."""
    from facetrace.cli.render import console

    old, new = governance(ctx).policy.change(name, value)
    console.print(
        f"{name}: {json.dumps(old)} → {json.dumps(new)} (recorded in the audit log).", highlight=False
    )
