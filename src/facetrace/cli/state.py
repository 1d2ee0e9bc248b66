"""What every command shares: the settings, and who is acting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from facetrace.core.config import Settings
    from facetrace.governance.service import Governance


@dataclass(slots=True)
class CliState:
    settings: Settings
    token: str | None
    _governance: Governance | None = field(default=None, repr=False)


def settings_of(ctx: typer.Context) -> Settings:
    settings: Settings = ctx.find_root().obj.settings
    return settings


def governance(ctx: typer.Context) -> Governance:
    """The acting user's governance layer, opened once per command."""
    from facetrace.governance.service import Governance

    root = ctx.find_root()
    state: CliState = root.obj
    if state._governance is None:
        state._governance = Governance.open(state.settings, state.token)
        # A process would drop its connections on exit anyway; a command run in-process (tests) must
        # not leave them open behind it.
        root.call_on_close(state._governance.sessions.kw["bind"].dispose)
    return state._governance
