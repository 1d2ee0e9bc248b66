"""Number options the CLI accepts: finite ones only (Click's FLOAT reads 'nan' and 'inf' as numbers)."""

from __future__ import annotations

import math

import typer


def finite(value: float | None) -> float | None:
    """A Typer callback: refuse NaN and ±infinity with a clear message, as the API does (422)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number: give a plain number such as 0.5")
    return value
