"""Load test of the HTTP API: 1, 2, 4 and 8 concurrent searchers against ``facetrace serve`` on 127.0.0.1.

The server runs as its own process on a fresh gallery (dev photos when ../shared is present,
else variants of scikit-image's astronaut), exactly as ``make run`` starts it. Each searcher
logs in as an investigator and sends probe photos with their purpose for a fixed time, at each
level of concurrency in turn. The bound printed next to it: the same searches in-process through
the governance service, from one thread and from as many threads as the server has analyzers
(FACETRACE_ANALYZERS, default the cores), each checking an analyzer out of a pool as the server does.

Run: ``.venv/bin/python bench/load_benchmark.py [--clients 1 2 4 8] [--seconds 20]`` (part of ``make bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from facetrace.core.config import Settings
from facetrace.governance.collection_policy import GovernedCollection
from facetrace.governance.searches import Purpose
from facetrace.governance.service import Governance
from facetrace.ingest.pipeline import ingest
from facetrace.vision.analyzer_pool import AnalyzerPool
from facetrace.vision.factory import build_analyzer

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "faces" / "dev"
RESULTS = ROOT / "bench" / "results"
PASSWORD = "load-test-password-1"
PURPOSE = {"case_ref": "LOAD-1", "offence": "missing-person", "justification": "load test of the API"}
console = Console(width=120)


def gallery_and_probes(folder: Path, size: int) -> tuple[list[Path], list[bytes]]:
    """Gallery photos (written to ``folder`` when made up) and different photos to search with."""
    if DEV.is_dir():
        people = sorted(p for p in DEV.iterdir() if p.is_dir())
        photos = [photo for person in people for photo in sorted(person.glob("*.jpg"))]
        gallery = photos[::2][:size]
        probes = [p.read_bytes() for p in photos[1::2][:50]]
        return gallery, probes
    from skimage import data

    astronaut = data.astronaut()
    gallery = []
    for number in range(min(size, 40)):
        crop = astronaut[number : 400 + number, number : 400 + number]
        path = folder / f"astronaut_{number}.jpg"
        Image.fromarray(np.ascontiguousarray(crop)).save(path, quality=90)
        gallery.append(path)
    buffer = io.BytesIO()
    Image.fromarray(astronaut).save(buffer, "JPEG", quality=80)
    return gallery, [buffer.getvalue()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def searcher(
    client: httpx.AsyncClient, token: str, probes: list[bytes], offset: int, until: float
) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    errors: list[str] = []
    number = offset
    while time.monotonic() < until:
        probe = probes[number % len(probes)]
        number += 1
        started = time.perf_counter()
        try:
            response = await client.post(
                "/api/v1/search",
                headers={"authorization": f"Bearer {token}"},
                data=PURPOSE,
                files={"photo": ("probe.jpg", probe, "image/jpeg")},
            )
        except httpx.HTTPError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
    return latencies, errors


async def load(base: str, tokens: list[str], probes: list[bytes], seconds: float) -> dict:
    until = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=len(tokens))
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        started = time.perf_counter()
        runs = await asyncio.gather(
            *(searcher(client, token, probes, n * 7, until) for n, token in enumerate(tokens))
        )
        elapsed = time.perf_counter() - started
    latencies = [latency for run, _ in runs for latency in run]
    errors = [error for _, run in runs for error in run]
    return {
        "requests": len(latencies) + len(errors),
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "errors": len(errors),
        "first_errors": errors[:5],
    }


def in_process_rate(settings: Settings, token: str, probes: list[bytes], count: int, threads: int) -> float:
    """Searches per second through the governance service in this process, from ``threads`` threads
    at once, as the investigator whose token this is; each analysis checks out one of a pool of
    FACETRACE_ANALYZERS analyzers, as the server's do."""
    pool = AnalyzerPool(lambda: build_analyzer(settings), settings.analyzers)
    analyzer = pool.analyzer()
    purpose = Purpose(PURPOSE["case_ref"], PURPOSE["offence"], PURPOSE["justification"])
    governance = [Governance.open(settings, token) for _ in range(threads)]
    governance[0].searches.search(analyzer, probes[0], purpose, k=10)  # warm up: models, gallery

    def search_share(thread: int) -> None:
        for number in range(thread, count, threads):
            governance[thread].searches.search(analyzer, probes[number % len(probes)], purpose, k=10)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool_threads:
        list(pool_threads.map(search_share, range(threads)))
    return count / (time.perf_counter() - started)


def server_environment(**settings: str) -> dict[str, str]:
    """This process's environment without its FACETRACE_* settings, plus the admin's password, quotas
    no load test reaches (a real deployment's would stop it after 50 searches per user) and
    ``settings`` (``FACETRACE_`` names)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FACETRACE_")}
    return environment | {
        "FACETRACE_ADMIN_PASSWORD": PASSWORD,
        "FACETRACE_SEARCHES_PER_DAY": "1000000",
        "FACETRACE_BURST_SEARCHES_PER_HOUR": "1000000",
        **settings,
    }


def start_server(data_dir: Path, port: int, environment: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "facetrace", "--data-dir", str(data_dir), "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped: {server.stderr.read().decode() if server.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not answer /health within 120 s")


def tokens_for(base: str, clients: int) -> list[str]:
    """An investigator account per searcher (each has its own quota), logged in with a password."""
    admin = httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": PASSWORD})
    admin.raise_for_status()
    headers = {"authorization": f"Bearer {admin.json()['access_token']}"}
    httpx.post(f"{base}/api/v1/units", json={"name": "load"}, headers=headers).raise_for_status()
    tokens = []
    for number in range(clients):
        name = f"investigator{number}"
        body = {"name": name, "roles": ["investigator"], "unit": "load", "password": PASSWORD}
        httpx.post(f"{base}/api/v1/users", json=body, headers=headers).raise_for_status()
        login = httpx.post(f"{base}/api/v1/auth/token", data={"username": name, "password": PASSWORD})
        login.raise_for_status()
        tokens.append(login.json()["access_token"])
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8], help="concurrent searchers")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each level searches")
    parser.add_argument("--gallery", type=int, default=1000, help="photos in the gallery")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="facetrace-load-") as tmp:
        data_dir = Path(tmp) / "var"
        environment = server_environment()
        settings = Settings(
            data_dir=data_dir, searches_per_day=1_000_000, burst_searches_per_hour=1_000_000, workers=2
        )
        gallery, probes = gallery_and_probes(Path(tmp), args.gallery)
        console.print(f"Ingesting {len(gallery)} photos into a fresh gallery…")
        stats = ingest(
            settings,
            [str(p) for p in gallery],
            policy=GovernedCollection(settings),
            source_name="load-test",
            workers=2,
        )
        console.print(f"{stats.faces} faces. Starting the server ({settings.analyzers} analyzers)…")

        port = free_port()
        server = start_server(data_dir, port, environment)
        levels: dict[int, dict] = {}
        try:
            base = f"http://127.0.0.1:{port}"
            tokens = tokens_for(base, max(args.clients))
            for clients in args.clients:
                console.print(f"{clients} searcher(s) for {args.seconds:.0f} s…")
                levels[clients] = asyncio.run(load(base, tokens[:clients], probes, args.seconds))
        finally:
            server.terminate()
            server.wait(timeout=30)
        count = 60 * settings.analyzers
        bound = {
            threads: in_process_rate(settings, tokens[0], probes, count, threads)
            for threads in sorted({1, settings.analyzers})
        }

    single = levels[min(levels)]["requests_per_s"]
    report = {
        "seconds": args.seconds,
        "gallery_faces": stats.faces,
        "analyzers": settings.analyzers,
        "cores": os.cpu_count(),
        "levels": {
            str(clients): level | {"vs_1_client": level["requests_per_s"] / single}
            for clients, level in levels.items()
        },
        "in_process_searches_per_s": {str(threads): rate for threads, rate in bound.items()},
    }
    table = Table(
        title=f"HTTP search under load: {stats.faces:,} faces, {settings.analyzers} analyzers, "
        f"{os.cpu_count()} cores, {args.seconds:.0f} s per level"
    )
    for column in ("clients", "searches/s", f"× {min(levels)} client", "p50 ms", "p95 ms", "errors"):
        table.add_column(column, justify="right")
    for clients, level in levels.items():
        table.add_row(
            str(clients),
            f"{level['requests_per_s']:.1f}",
            f"{level['requests_per_s'] / single:.2f}",
            f"{level['p50_ms']:.0f}",
            f"{level['p95_ms']:.0f}",
            str(level["errors"]),
        )
    for threads, rate in bound.items():
        table.add_row(f"in-process, {threads} thread(s)", f"{rate:.1f}", f"{rate / bound[1]:.2f}", "", "", "")
    console.print(table)
    for clients, level in levels.items():
        for error in level["first_errors"]:
            console.print(f"[red]error ({clients} clients)[/] {error}", highlight=False)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(report, indent=2))
    console.print(f"wrote {RESULTS / 'load.json'}; command: python bench/load_benchmark.py")


if __name__ == "__main__":
    main()
