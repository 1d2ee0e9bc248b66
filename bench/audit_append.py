"""What one audit entry costs to append: ``--entries`` governed records on a fresh SQLite
catalog, each in its own transaction as every action writes it (hash, signature, commit), then
one full ``audit verify``.

Run: ``.venv/bin/python bench/audit_append.py [--entries 2000]``. Prints the median and p95
append time and the verification time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from facetrace.core.config import Settings
from facetrace.governance import audit
from facetrace.governance.service import Governance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        gov = Governance.open(Settings(data_dir=Path(folder) / "var", workers=1))
        times = []
        started = time.perf_counter()
        for number in range(args.entries):
            before = time.perf_counter()
            gov.record(audit.Record(action="bench", case_ref=f"C-{number}", details={"n": number}))
            times.append(time.perf_counter() - before)
        total = time.perf_counter() - started
        before = time.perf_counter()
        report = gov.audit.verify()
        verified = time.perf_counter() - before
    times.sort()
    print(
        f"{args.entries} appends in {total:.2f} s: median {statistics.median(times) * 1e3:.3f} ms, "
        f"p95 {times[int(len(times) * 0.95)] * 1e3:.3f} ms; verify of {report.entries} entries "
        f"{verified * 1e3:.0f} ms (ok={report.ok})"
    )


if __name__ == "__main__":
    main()
