"""The ``facetrace`` command, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def facetrace(
    data_dir: Path, *arguments: str, token: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``facetrace`` command as a user does: a new process, its output and exit code."""
    # support.catalogs cleared the shell's FACETRACE_* (and names the catalog under --catalog postgres)
    environment = dict(os.environ)
    if token:
        environment["FACETRACE_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "facetrace", "--data-dir", str(data_dir), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=environment,
        input=stdin,
    )
