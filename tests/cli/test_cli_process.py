"""What only a real ``facetrace`` process shows: the entry point (``python -m facetrace``) and its exit
statuses, and what starting the command costs in imports. Every other CLI test runs the command
in-process (``support.cli_runner``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.cli import facetrace

#: What the command line must not load before a command needs it (issue 17: ``--help`` in 0.3 s).
HEAVY = ("cv2", "faiss", "fastapi", "sqlalchemy", "numpy", "onnxruntime", "PIL", "httpx", "uvicorn")

LOADED = f"""
import json, sys
{{}}
print(json.dumps(sorted(name for name in {HEAVY!r} if name in sys.modules)))
"""


def heavy_modules_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter has loaded after running ``code``."""
    done = subprocess.run(
        [sys.executable, "-c", LOADED.format(code)], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_the_cli_or_asking_for_help_loads_no_heavy_module() -> None:
    assert heavy_modules_after("import facetrace.cli") == []
    asking_for_help = (
        "import contextlib\nsys.argv = ['facetrace', '--help']\nfrom facetrace.cli import run\n"
        "with contextlib.suppress(SystemExit): run()"
    )
    assert heavy_modules_after(asking_for_help) == []


def test_python_m_facetrace_says_why_it_refuses_and_exits_with_its_status(tmp_path: Path) -> None:
    """A refusal is a message and status 1, a usage error status 2, never a traceback."""
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(b"not read: the search is refused first")
    refused = facetrace(tmp_path / "var", "search", str(probe))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "a search needs a case reference (--case-ref)" in " ".join(refused.stderr.split())
    misused = facetrace(tmp_path / "var", "reindex", "--kind", "hnsw")
    assert misused.returncode == 2 and "Invalid value for '--kind'" in misused.stderr
