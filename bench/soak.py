"""Soak test: minutes of mixed traffic against a real ``facetrace serve``, killed with SIGKILL and
restarted halfway, then the state checked.

The server runs as its own process on a fresh data dir (started as :mod:`load_benchmark` starts
it), with an import folder (FACETRACE_IMPORT_DIR) holding batches of photos. Concurrently, for the
whole run:

- investigators search with probe photos (API);
- an admin imports the next batch folder every few seconds (an import job; polled to its end);
- a DPO erases, with a reason, the images of one already imported photo at a time;
- anonymous visitors file access requests at the portal with a selfie;
- people log in: through the web login form, and for API tokens (right and wrong passwords).

Halfway through the server gets ``kill -9`` (its import workers with it) and is started again on
the same data dir and port. Afterwards, with the server stopped: ``facetrace audit verify`` must hold;
every image must be whole (its sighting, as many face rows as it counts, each face in the index) or
absent; no face id twice in the index; nothing left of an erased photo; and no 5xx answered except
while the server was down (the portal's load shedding, 503 with Retry-After, counted apart).

Printed: requests by kind (ok, 4xx, 5xx, failed to connect), latency p50/p95 per kind, the server's
peak resident memory (with its worker processes), the jobs' end states and every check.

Run: ``.venv/bin/python bench/soak.py [--minutes 10] [--searchers 2]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image
from rich.table import Table
from sqlalchemy import select

from facetrace.core.config import Settings
from facetrace.index.faiss_files import open_faiss_index
from facetrace.store.catalog_models import Face, Sighting
from facetrace.store.catalog_models import Image as ImageRow
from facetrace.store.engine import open_catalog
from facetrace.vision.factory import build_embedder
from load_benchmark import (
    PASSWORD,
    RESULTS,
    console,
    free_port,
    gallery_and_probes,
    percentile,
    server_environment,
)

PURPOSE = {"case_ref": "SOAK-1", "offence": "missing-person", "justification": "soak test of the server"}
BATCH = 12  # photos per import folder
#: Which of the login loop's rounds send a wrong password instead (4, under the throttle's 5 free ones).
GUESSES = (3, 60, 120, 180)
#: Figures of the final state that are sizes, not faults.
COUNTS = ("images", "faces")


@dataclass
class Tally:
    """Every request's outcome, by kind, and the windows in which the server was down."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    outcomes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    errors: list[str] = field(default_factory=list)
    down: list[list[float]] = field(default_factory=list)  # [start, end] of each outage
    lock: threading.Lock = field(default_factory=threading.Lock)

    def server_down(self, at: float) -> bool:
        return any(start <= at <= (end or float("inf")) for start, end in self.down)

    def note(self, kind: str, started: float, response: httpx.Response | None, failure: str = "") -> None:
        now = time.monotonic()
        with self.lock:
            if response is None:
                outcome = "down" if self.server_down(started) or self.server_down(now) else "failed"
                if outcome == "failed":
                    self.errors.append(f"{kind}: {failure}")
            elif response.status_code == 503 and kind == "portal" and "retry-after" in response.headers:
                outcome = "shed"
            elif response.status_code >= 500:
                outcome = "5xx while down" if self.server_down(started) else "5xx"
                if outcome == "5xx":
                    self.errors.append(f"{kind}: HTTP {response.status_code} {response.text[:200]}")
            else:
                outcome = f"{response.status_code // 100}xx"
                self.latencies[kind].append(now - started)
            self.outcomes[kind][outcome] += 1


class Soak:
    """The server process, the people using it, and what they did."""

    def __init__(self, data_dir: Path, import_dir: Path, port: int, environment: dict[str, str]) -> None:
        self.data_dir, self.import_dir, self.port, self.environment = data_dir, import_dir, port, environment
        self.base = f"http://127.0.0.1:{port}"
        self.tally = Tally()
        self.stop = threading.Event()
        self.server: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / "server.log"
        self.rss_peak = 0
        self.imported: list[Path] = []  # photos whose import job finished
        self.erased: list[str] = []
        self.erasures_matched = 0  # erasures that found the photo's image (it may have been a copy)
        self.jobs: dict[str, str] = {}

    def start(self) -> None:
        """Start ``facetrace serve`` as :mod:`load_benchmark` does, its stderr appended to a log file
        (a pipe nobody reads would fill and stall the server)."""
        command = [sys.executable, "-m", "facetrace", "--data-dir", str(self.data_dir), "serve"]
        with self.log.open("ab") as log:
            self.server = subprocess.Popen(
                [*command, "--port", str(self.port)],
                env=self.environment,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and self.server.poll() is None:
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.server.kill()
        raise SystemExit(f"the server did not start:\n{self.log.read_text()[-3000:]}")

    def tracebacks(self) -> list[str]:
        """The exceptions the server logged (each traceback's exception line, after its frames); the
        whole log is kept as bench/results/soak-server.log."""
        text = self.log.read_text(errors="replace")
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "soak-server.log").write_text(text)
        blocks = text.split("Traceback (most recent call last):")[1:]
        lines = [[line for line in block.splitlines() if line and not line[0].isspace()] for block in blocks]
        return [found[0] if found else "(no exception line)" for found in lines]

    def kill(self) -> None:
        assert self.server is not None
        self.tally.down.append([time.monotonic(), 0.0])
        tree = [self.server.pid, *(c.pid for c in psutil.Process(self.server.pid).children(recursive=True))]
        os.kill(self.server.pid, signal.SIGKILL)
        self.server.wait()
        time.sleep(2)
        survivors = [
            pid for pid in tree[1:] if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
        ]
        console.print(
            f"killed the server (pid {tree[0]}); its {len(tree) - 1} children left alive: {len(survivors)}"
        )
        self.start()
        self.tally.down[-1][1] = time.monotonic()
        console.print(f"restarted after {self.tally.down[-1][1] - self.tally.down[-1][0]:.1f} s")

    def watch_memory(self) -> None:
        while not self.stop.wait(0.5):
            try:
                process = psutil.Process(self.server.pid) if self.server else None
                if process is None:
                    continue
                rss = sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
                self.rss_peak = max(self.rss_peak, rss)
            except psutil.Error:
                continue

    def request(self, kind: str, send: Callable[[], httpx.Response]) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = send()
        except httpx.HTTPError as exc:
            self.tally.note(kind, started, None, f"{type(exc).__name__}: {exc}")
            time.sleep(0.5)
            return None
        self.tally.note(kind, started, response)
        return response

    def token(self, name: str, password: str = PASSWORD) -> str:
        while True:
            response = self.request(
                "login-api",
                lambda: httpx.post(
                    f"{self.base}/api/v1/auth/token", data={"username": name, "password": password}
                ),
            )
            if response is not None and response.status_code == 200:
                return str(response.json()["access_token"])
            time.sleep(1)

    # --- the people --------------------------------------------------------------------------------

    def searcher(self, token: str, probes: list[bytes], offset: int) -> None:
        with httpx.Client(
            base_url=self.base, timeout=120, headers={"authorization": f"Bearer {token}"}
        ) as client:
            for number in itertools.count(offset):
                if self.stop.is_set():
                    return
                probe = probes[number % len(probes)]
                self.request(
                    "search",
                    lambda probe=probe: client.post(
                        "/api/v1/search", data=PURPOSE, files={"photo": ("probe.jpg", probe, "image/jpeg")}
                    ),
                )

    def importer(self, token: str, folders: list[Path]) -> None:
        with httpx.Client(
            base_url=self.base, timeout=60, headers={"authorization": f"Bearer {token}"}
        ) as client:
            for folder in folders:
                if self.stop.is_set():
                    return
                body = {"kind": "import", "source": "archive", "folder": folder.name}
                started = self.request("import", lambda body=body: client.post("/api/v1/jobs", json=body))
                if started is None or started.status_code != 202:
                    continue
                job_id = started.json()["id"]
                while not self.stop.is_set():
                    time.sleep(1)
                    job = self.request(
                        "job-status", lambda job_id=job_id: client.get(f"/api/v1/jobs/{job_id}")
                    )
                    if job is None or job.status_code != 200:
                        continue
                    state = job.json()["state"]
                    self.jobs[str(job_id)] = state
                    if state not in ("queued", "running"):
                        if state == "done":
                            self.imported.extend(sorted(folder.glob("*.jpg")))
                        break
                self.stop.wait(3)

    def eraser(self, token: str) -> None:
        with httpx.Client(
            base_url=self.base, timeout=120, headers={"authorization": f"Bearer {token}"}
        ) as client:
            while not self.stop.wait(8):
                candidates = [path for path in self.imported if str(path) not in self.erased]
                if not candidates:
                    continue
                target = str(candidates[len(self.erased) * 7 % len(candidates)])
                order = {"urls": [target], "dry_run": False, "reason": f"soak erasure {len(self.erased) + 1}"}
                response = self.request(
                    "erasure", lambda order=order: client.post("/api/v1/erasures", json=order)
                )
                if response is not None and response.status_code in (200, 201):
                    self.erased.append(target)
                    self.erasures_matched += response.json()["counts"]["images"] > 0

    def visitor(self, selfie: bytes) -> None:
        while not self.stop.wait(1):
            with httpx.Client(base_url=self.base, timeout=120) as client:
                opened = self.request("portal-page", lambda client=client: client.get("/portal"))
                action = (
                    re.search(r'action="(/portal\?csrf=[^"]+)"', opened.text) if opened is not None else None
                )
                if action is None:
                    continue
                target = action.group(1)
                self.request("portal", lambda client=client, to=target: file_request(client, to, selfie))

    def logins(self, name: str) -> None:
        for number in itertools.count():
            if self.stop.wait(1):
                return
            with httpx.Client(base_url=self.base, timeout=60) as browser:
                page = self.request("login-page", lambda browser=browser: browser.get("/login"))
                token = re.search(r'name="csrf" value="([^"]+)"', page.text) if page is not None else None
                if token is not None:
                    form = {"csrf": token.group(1), "username": name, "password": PASSWORD}
                    self.request(
                        "login-web", lambda browser=browser, form=form: browser.post("/login", data=form)
                    )
            # A few wrong guesses, fewer than the throttle lets an address make before it blocks every
            # login from there (the soak's clients all share 127.0.0.1).
            who, password = ("mallory", f"guess-{number}") if number in GUESSES else (name, PASSWORD)
            self.request(
                "login-api",
                lambda who=who, password=password: httpx.post(
                    f"{self.base}/api/v1/auth/token",
                    data={"username": who, "password": password},
                    timeout=60,
                ),
            )


def file_request(client: httpx.Client, action: str, selfie: bytes) -> httpx.Response:
    """An access request at the portal, by selfie."""
    form = {"kind": "access", "contact": "soak@example.org"}
    return client.post(action, data=form, files={"photo": ("me.jpg", selfie, "image/jpeg")})


def set_up_people(base: str) -> dict[str, str]:
    """Users (two investigators, a DPO, someone who logs in) and the import source; their tokens."""
    admin = httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": PASSWORD})
    admin.raise_for_status()
    headers = {"authorization": f"Bearer {admin.json()['access_token']}"}
    httpx.post(f"{base}/api/v1/units", json={"name": "soak"}, headers=headers).raise_for_status()
    tokens = {"admin": admin.json()["access_token"]}
    for name, role in (
        ("investigator0", "investigator"),
        ("investigator1", "investigator"),
        ("dpo", "dpo"),
        ("clerk", "auditor"),
    ):
        body = {"name": name, "roles": [role], "unit": "soak", "password": PASSWORD}
        httpx.post(f"{base}/api/v1/users", json=body, headers=headers).raise_for_status()
        login = httpx.post(f"{base}/api/v1/auth/token", data={"username": name, "password": PASSWORD})
        login.raise_for_status()
        tokens[name] = login.json()["access_token"]
    source = {"name": "archive", "kind": "local", "legal_basis": "own press archive", "jurisdiction": "FR"}
    httpx.post(f"{base}/api/v1/sources", json=source, headers=headers).raise_for_status()
    return tokens


def import_batches(photos: list[Path], import_dir: Path) -> list[Path]:
    """The gallery photos copied into the import folder, ``BATCH`` to a subfolder."""
    folders = []
    for number in range(0, len(photos), BATCH):
        folder = import_dir / f"batch{number // BATCH:03d}"
        folder.mkdir(parents=True)
        for photo in photos[number : number + BATCH]:
            shutil.copyfile(photo, folder / f"{photo.parent.name}-{photo.name}")
        folders.append(folder)
    return folders


def check_state(data_dir: Path, erased: list[str], auditor_token: str) -> dict[str, object]:
    """With the server stopped: every image whole or absent, index ↔ faces, nothing of the erased."""
    settings = Settings(data_dir=data_dir)
    with open_catalog(settings.catalog_url)() as session:
        images = session.scalars(select(ImageRow)).all()
        without_sighting = [image.id for image in images if not image.sightings]
        short_of_faces = [image.id for image in images if image.face_count != len(image.faces)]
        face_ids = sorted(session.scalars(select(Face.id)))
        locations = set(session.scalars(select(Sighting.location)))
    embedder = build_embedder(settings)
    index_ids = open_faiss_index(settings.index_dir, embedder.model_id, embedder.dim).ids().tolist()
    verify = subprocess.run(
        [sys.executable, "-m", "facetrace", "--data-dir", str(data_dir), "audit", "verify"],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("FACETRACE_")}
        | {"FACETRACE_TOKEN": auditor_token},
    )
    return {
        "audit verify holds": verify.returncode == 0,
        "images": len(images),
        "faces": len(face_ids),
        "images without a sighting": len(without_sighting),
        "images missing faces": len(short_of_faces),
        "face ids duplicated in the index": len(index_ids) - len(set(index_ids)),
        "faces not in the index": len(set(face_ids) - set(index_ids)),
        "index ids without a face": len(set(index_ids) - set(face_ids)),
        "erased photos still seen": len(set(erased) & locations),
        "audit verify says": (verify.stdout + verify.stderr).strip().splitlines()[-1:] or [""],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the traffic runs")
    parser.add_argument("--searchers", type=int, default=2, help="concurrent investigators")
    parser.add_argument("--gallery", type=int, default=600, help="photos to import, in batches")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="facetrace-soak-") as tmp:
        root = Path(tmp)
        data_dir, import_dir = root / "var", root / "imports"
        photos, probes = gallery_and_probes(root, args.gallery + 1)
        if len(photos) < args.gallery:  # no shared face data: the astronaut, shifted and mirrored
            photos = made_up_photos(root / "made-up", args.gallery)
        folders = import_batches(photos, import_dir)
        environment = server_environment(
            FACETRACE_PORTAL_REQUESTS_PER_HOUR="1000000",
            FACETRACE_IMPORT_DIR=str(import_dir),
            FACETRACE_WORKERS="1",
        )
        soak = Soak(data_dir, import_dir, free_port(), environment)
        soak.start()
        tokens = set_up_people(soak.base)
        console.print(
            f"{len(folders)} import batches of {BATCH}; traffic for {args.minutes:g} min, kill -9 halfway"
        )
        people = [
            *(
                threading.Thread(target=soak.searcher, args=(tokens[f"investigator{n % 2}"], probes, n * 7))
                for n in range(args.searchers)
            ),
            threading.Thread(target=soak.importer, args=(tokens["admin"], folders)),
            threading.Thread(target=soak.eraser, args=(tokens["dpo"],)),
            threading.Thread(target=soak.visitor, args=(probes[0],)),
            threading.Thread(target=soak.logins, args=("clerk",)),
            threading.Thread(target=soak.watch_memory),
        ]
        started = time.monotonic()
        for person in people:
            person.start()
        seconds = args.minutes * 60
        time.sleep(seconds / 2)
        soak.kill()
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        soak.stop.set()
        for person in people:
            person.join(timeout=180)
        elapsed = time.monotonic() - started
        job_states = jobs_after(soak.base, tokens["admin"])
        assert soak.server is not None
        soak.server.terminate()
        soak.server.wait(timeout=60)
        checks = check_state(data_dir, soak.erased, tokens["clerk"])
        tracebacks = soak.tracebacks()
    report(soak, checks, job_states, tracebacks, elapsed, args)


def made_up_photos(folder: Path, count: int) -> list[Path]:
    """Without the shared face data: the astronaut shifted, mirrored and re-encoded, ``count`` times."""
    from skimage import data

    folder.mkdir(parents=True)
    astronaut = data.astronaut()
    paths = []
    for number in range(count):
        shift = number % 90
        crop = astronaut[shift : 420 + shift, (number * 3) % 90 : 420 + (number * 3) % 90]
        crop = crop[:, ::-1] if number % 2 else crop
        path = folder / f"astronaut_{number:04d}.jpg"
        Image.fromarray(np.ascontiguousarray(crop)).save(path, quality=70 + number % 25)
        paths.append(path)
    return paths


def jobs_after(base: str, token: str) -> Counter[str]:
    """The import jobs' states at the end (the one the kill cut short: interrupted)."""
    listed = httpx.get(f"{base}/api/v1/jobs", headers={"authorization": f"Bearer {token}"}, timeout=60)
    return Counter(job["state"] for job in listed.json()) if listed.status_code == 200 else Counter()


def report(
    soak: Soak,
    checks: dict[str, object],
    jobs: Counter[str],
    tracebacks: list[str],
    elapsed: float,
    args: argparse.Namespace,
) -> None:
    tally = soak.tally
    table = Table(title=f"Soak: {elapsed / 60:.1f} min of mixed traffic, kill -9 and restart halfway")
    for column in ("kind", "requests", "2xx/3xx", "4xx", "5xx", "down", "failed", "p50 ms", "p95 ms"):
        table.add_column(column, justify="right" if column != "kind" else "left")
    for kind in sorted(tally.outcomes):
        outcome, latency = tally.outcomes[kind], tally.latencies[kind]
        table.add_row(
            kind,
            str(sum(outcome.values())),
            str(outcome["2xx"] + outcome["3xx"]),
            str(outcome["4xx"]),
            str(outcome["5xx"]) + (f" (+{outcome['shed']} shed)" if outcome["shed"] else ""),
            str(outcome["down"] + outcome["5xx while down"]),
            str(outcome["failed"]),
            f"{percentile(latency, 50) * 1000:.0f}",
            f"{percentile(latency, 95) * 1000:.0f}",
        )
    console.print(table)
    five_xx = sum(outcome["5xx"] for outcome in tally.outcomes.values())
    outage = sum(end - start for start, end in tally.down)
    console.print(
        f"server down for {outage:.1f} s; 5xx while up: {five_xx}; failed requests while up: "
        f"{sum(o['failed'] for o in tally.outcomes.values())}"
    )
    console.print(f"server RSS peak (with its workers): {soak.rss_peak / 2**20:.0f} MiB")
    console.print(
        f"import jobs: {dict(jobs)}; photos erased: {len(soak.erased)} "
        f"({soak.erasures_matched} found their image)"
    )
    for check, value in checks.items():
        console.print(f"  {check}: {value}")
    for error in tally.errors[:10]:
        console.print(f"[red]error[/] {error[:100]}", highlight=False)
    for traceback in tracebacks[:10]:
        console.print(f"[red]server traceback[/] {traceback}", highlight=False)
    held = (
        checks["audit verify holds"] is True
        and five_xx == 0
        and all(value == 0 for key, value in checks.items() if type(value) is int and key not in COUNTS)
    )
    results = {
        "minutes": args.minutes,
        "requests": {kind: dict(outcome) for kind, outcome in tally.outcomes.items()},
        "p50_ms": {kind: percentile(v, 50) * 1000 for kind, v in tally.latencies.items()},
        "p95_ms": {kind: percentile(v, 95) * 1000 for kind, v in tally.latencies.items()},
        "rss_peak_mib": soak.rss_peak / 2**20,
        "outage_s": outage,
        "jobs": dict(jobs),
        "erased": len(soak.erased),
        "checks": checks,
        "server_tracebacks": tracebacks,
        "held": held,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(results, indent=2, default=str))
    console.print(
        f"{'[green]all checks hold' if held else '[red]a check failed'}[/]; wrote {RESULTS / 'soak.json'}; "
        f"command: python bench/soak.py --minutes {args.minutes:g}"
    )
    if not held:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
