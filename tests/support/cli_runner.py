"""The ``facetrace`` command run inside the test process: Typer's ``CliRunner`` in place of a new Python
process for every call (which costs the interpreter's start-up and every import, each time).

What a command changes of the process is put back after it: the environment (``CliRunner`` does),
the standard streams (``CliRunner`` does), and the umask, which every command tightens for the files
it writes. A command that fails with anything but an exit status raises here, in the test, where a
real process would print a traceback. Tests of what only a real process shows (``python -m
facetrace``, exit statuses of the interpreter, what importing costs) use ``support.cli.facetrace``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from facetrace.cli import app


@dataclass(frozen=True, slots=True)
class Ran:
    """What a command did, named as ``subprocess.CompletedProcess`` names it."""

    returncode: int
    stdout: str
    stderr: str


def facetrace(data_dir: Path, *arguments: str, token: str | None = None, stdin: str | None = None) -> Ran:
    """Run ``facetrace --data-dir DATA_DIR ARGUMENTS`` in-process, acting with ``token`` if given."""
    umask = os.umask(0o077)
    os.umask(umask)
    try:
        result = CliRunner().invoke(
            app,
            ["--data-dir", str(data_dir), *arguments],
            input=stdin,
            env={"FACETRACE_TOKEN": token},  # None: unset, as in a shell that never exported it
            catch_exceptions=False,
            prog_name="facetrace",
        )
    finally:
        os.umask(umask)
    return Ran(result.exit_code, result.stdout, result.stderr)
