"""Tasks for the worker pools (local and Ray) to run: a module of its own, so that both pools' tests
share one and Ray can ship it to its workers by value."""

from __future__ import annotations

import os


def shout_or_die(data: bytes) -> bytes:
    """A task whose input decides its fate: ``die`` kills the worker process as a native crash would."""
    if data == b"die":
        os._exit(1)
    if data == b"raise":
        raise ValueError("bad input")
    return data.upper()
