"""Why the 8-bit codes and the re-ranked templates are mapped with ``MADV_RANDOM``: a search
reads a hundred to a thousand rows from anywhere in a file larger than the page cache.

Method: draws of ``--rows`` random rows (sorted, as a search reads them) from a large ``.npy``
file (the 100M scale benchmark's float16 gallery by default), read through a map the kernel
reads ahead in (numpy's default) and through one advised ``MADV_RANDOM``. Each draw takes new
rows, the advised map's first, so that the other's read-ahead cannot serve them. Rows are cold
only if the file is much larger than the page cache, as at 100M.

Run: ``.venv/bin/python bench/mapped_reads.py [FILE]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from facetrace.index.code_store import map_without_read_ahead


def draw_ms(rows: np.ndarray, count: int, rng: np.random.Generator) -> float:
    picked = np.sort(rng.choice(len(rows), count, replace=False))
    started = time.perf_counter()
    np.asarray(rows[picked], dtype=np.float32)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", type=Path, default=Path("var/bench/gallery-100000000.npy"))
    parser.add_argument("--rows", type=int, default=100, help="rows per draw (a search re-ranks 100)")
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args()
    stored = np.load(args.file, mmap_mode="r")
    maps = {
        "MADV_RANDOM": map_without_read_ahead(
            Path(stored.filename), stored.shape, stored.dtype, offset=stored.offset
        ),
        "kernel read-ahead (default)": stored,
    }
    rng = np.random.default_rng(20241126)
    table = Table(title=f"{args.rows} random rows of {args.file} ({args.file.stat().st_size / 1e9:.1f} GB)")
    table.add_column("map")
    for draw in range(args.draws):
        table.add_column(f"draw {draw + 1} ms", justify="right")
    for name, rows in maps.items():
        table.add_row(name, *(f"{draw_ms(rows, args.rows, rng):.1f}" for _ in range(args.draws)))
    Console().print(table)


if __name__ == "__main__":
    main()
