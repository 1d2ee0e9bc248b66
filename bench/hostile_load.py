"""Investigators' searches while anonymous clients attack the portal and the logins.

A real ``facetrace serve`` on 127.0.0.1 (started as :mod:`load_benchmark` starts it, on a fresh
gallery). Investigators search in a loop, alone and then with attackers, in alternating rounds of
the same length, so that both sets of latencies come from the same server and the same machine
load. The attackers, each cycling through every kind at its own offset:

- portal photos: a decompression bomb (a 20000×20000 PNG of 400 KB, over the pixel limit), an RGBA
  PNG just under the pixel limit (8900×8900, 0.3 MB, 1.2 GB of pixels), a heavy but legal one
  (5000×5000, about a second of decoding and detection), and a plain face photo (whose filing
  matches it against the gallery), each with a valid session and CSRF token;
- oversized bodies (64 MiB declared, streamed until the server answers) to /portal, /login and
  /api/v1/auth/token;
- slow bodies, one byte every half second for ``--trickle`` seconds, to the same three;
- with ``--guess-passwords``, wrong passwords to /api/v1/auth/token as fast as they are answered
  (after five, the login throttle answers 429 before hashing).

The portal's hourly limit per address is lifted (every attacker shares 127.0.0.1, while a real flood
comes from many addresses), so that the attackers reach the analysis. Printed: investigators' p50 and
p95 without and with attackers and the ratio of the p95s (target: at most 1.5), the server's peak
resident memory, and every 5xx, the portal lane's 503 refusals (load shed with Retry-After, never
decoded) apart from any other.

Run: ``.venv/bin/python bench/hostile_load.py [--seconds 30] [--rounds 2]`` (part of ``make bench``;
about 2 minutes of load, plus the gallery's ingest and the server's start).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import secrets
import shlex
import struct
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.table import Table

from facetrace.core.config import Settings
from facetrace.governance.collection_policy import GovernedCollection
from facetrace.ingest.pipeline import ingest
from load_benchmark import (
    RESULTS,
    ROOT,
    console,
    free_port,
    gallery_and_probes,
    percentile,
    searcher,
    server_environment,
    start_server,
    tokens_for,
)

LOGIN_PATHS = ("/login", "/api/v1/auth/token")
URLENCODED = "application/x-www-form-urlencoded"
URLENCODED_PATHS = ("/api/v1/auth/token",)  # the API's token form is url-encoded only
OVERSIZED_BYTES = 64 * 1024 * 1024
#: What a slow body declares: within every route's limit, so that only its pace is hostile.
TRICKLED_BYTES = 60_000
CACHE = ROOT / "var" / "bench" / "hostile"
CHUNK = b"\0" * 65536


def flat_png(width: int, height: int, channels: int) -> bytes:
    """A valid PNG of one colour: a small file of many pixels, made once (deflating a few hundred MB
    takes seconds) and kept under var/bench."""
    path = CACHE / f"flat-{width}x{height}x{channels}.png"
    if path.exists():
        return path.read_bytes()
    colour_type = {1: 0, 3: 2, 4: 6}[channels]
    squeeze = zlib.compressobj(9)
    row = b"\0" + bytes([180, 120, 60, 255][:channels]) * width  # filter byte, then the pixels
    data = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return png


#: What an attack got back: the status and whether it said when to retry; None when no answer came.
Answer = tuple[int, bool] | None


@dataclass
class Tally:
    """What the attackers got back, by kind and status ('503 shed': a 503 with Retry-After, load refused
    on purpose; 'none': no answer before the attacker gave up)."""

    answers: Counter[tuple[str, str]] = field(default_factory=Counter)

    def note(self, kind: str, answer: Answer) -> None:
        if answer is None:
            self.answers[kind, "none"] += 1
            return
        status, retry_after = answer
        self.answers[kind, f"{status} shed" if status == 503 and retry_after else str(status)] += 1

    def count(self, wanted: Callable[[str], bool]) -> int:
        return sum(n for (_, status), n in self.answers.items() if wanted(status))


class Attacker:
    """One anonymous client: a portal session of its own, and every kind of attack in turn."""

    def __init__(
        self, base: str, photos: dict[str, bytes], tally: Tally, trickle_s: float, guess_passwords: bool
    ) -> None:
        self.base = base
        self.port = int(base.rsplit(":", 1)[1])
        self.photos = photos
        self.tally = tally
        self.trickle_s = trickle_s
        self.guess_passwords = guess_passwords
        self.client = httpx.AsyncClient(base_url=base, timeout=120)
        self.action = ""

    async def open_portal(self) -> None:
        page = await self.client.get("/portal")
        found = re.search(r'action="(/portal\?csrf=[^"]+)"', page.text)
        assert found is not None, "the portal form has no action"
        self.action = found.group(1)

    def kinds(self) -> list[tuple[str, Callable[[], Awaitable[Answer]]]]:
        attacks: list[tuple[str, Callable[[], Awaitable[Answer]]]] = [
            (f"portal {name}", lambda photo=photo: self.post_photo(photo))
            for name, photo in self.photos.items()
        ]
        for path in (self.action, *LOGIN_PATHS):
            label = path.split("?")[0]
            attacks.append((f"{label} oversized", lambda path=path: self.raw_post(path, OVERSIZED_BYTES, 0)))
            attacks.append((f"{label} trickled", lambda path=path: self.raw_post(path, TRICKLED_BYTES, 0.5)))
        if self.guess_passwords:
            attacks.append(("token wrong password", self.guess_password))
        return attacks

    async def run(self, offset: int, until: float, only: str) -> None:
        attacks = [(kind, attack) for kind, attack in self.kinds() if only in kind]
        for kind, attack in itertools.islice(itertools.cycle(attacks), offset % len(attacks), None):
            if time.monotonic() >= until:
                return
            try:
                self.tally.note(kind, await attack())
            except httpx.HTTPError:
                self.tally.note(kind, None)

    async def post_photo(self, photo: bytes) -> Answer:
        sent = await self.client.post(
            self.action, data={"kind": "access"}, files={"photo": ("me.png", photo, "image/png")}
        )
        return sent.status_code, "retry-after" in sent.headers

    async def guess_password(self) -> Answer:
        form = {"username": f"someone-{secrets.token_hex(3)}", "password": secrets.token_urlsafe(12)}
        sent = await self.client.post("/api/v1/auth/token", data=form)
        return sent.status_code, "retry-after" in sent.headers

    async def raw_post(self, path: str, total: int, pause: float) -> Answer:
        """A POST declaring ``total`` bytes of the form type the path reads, sent in 64 KiB chunks
        (``pause`` 0) or one byte per ``pause`` seconds until the trickle time is up; the status, or
        None if none came."""
        cookies = "; ".join(f"{name}={value}" for name, value in self.client.cookies.items())
        form = URLENCODED if path in URLENCODED_PATHS else "multipart/form-data; boundary=x"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {form}\r\n"
            f"Content-Length: {total}\r\nCookie: {cookies}\r\n\r\n"
        ).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        answer = asyncio.ensure_future(reader.readuntil(b"\r\n\r\n"))
        give_up = time.monotonic() + self.trickle_s
        try:
            writer.write(head)
            sent = 0
            while sent < total and not answer.done() and time.monotonic() < give_up:
                piece = CHUNK[: total - sent] if pause == 0 else b"-"
                writer.write(piece)
                await asyncio.wait_for(writer.drain(), self.trickle_s)
                sent += len(piece)
                if pause:
                    await asyncio.wait({answer}, timeout=pause)
            await asyncio.wait({answer}, timeout=0 if pause else 30)
        except (ConnectionError, TimeoutError):
            await asyncio.wait({answer}, timeout=1)
        finally:
            answer.cancel() if not answer.done() else None
            writer.close()
        if not answer.done() or answer.cancelled() or answer.exception() is not None:
            return None
        head = answer.result().decode("latin-1")
        status = head.split(" ", 2)[1]
        return (int(status), "\nretry-after:" in head.lower()) if status.isdigit() else None


class PeakMemory:
    """The server process's resident memory, sampled every 50 ms; its high-water mark at the end."""

    def __init__(self, pid: int) -> None:
        self.status = Path(f"/proc/{pid}/status")
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _read(self, field_name: str) -> int:
        found = re.search(rf"^{field_name}:\s+(\d+) kB", self.status.read_text(), re.M)
        return int(found.group(1)) if found else 0

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_kib = max(self.peak_kib, self._read("VmRSS"))

    def phase(self) -> PeakMemory:
        self.peak_kib = self._read("VmRSS")
        return self

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def high_water_mib(self) -> float:
        return self._read("VmHWM") / 1024


async def searches(
    base: str, tokens: list[str], probes: list[bytes], until: float
) -> tuple[list[float], list[str]]:
    limits = httpx.Limits(max_connections=len(tokens))
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        runs = await asyncio.gather(
            *(searcher(client, token, probes, n * 7, until) for n, token in enumerate(tokens))
        )
    return [latency for run, _ in runs for latency in run], [error for _, run in runs for error in run]


async def phase(
    base: str, tokens: list[str], probes: list[bytes], attackers: list[Attacker], seconds: float, only: str
) -> tuple[list[float], list[str]]:
    """Investigators search for ``seconds``, with ``attackers`` (none: alone) attacking meanwhile with
    the attacks whose name holds ``only``."""
    until = time.monotonic() + seconds
    attacks = [asyncio.ensure_future(a.run(n * 3, until, only)) for n, a in enumerate(attackers)]
    found = await searches(base, tokens, probes, until)
    await asyncio.gather(*attacks)
    return found


async def rounds(
    base: str, tokens: list[str], probes: list[bytes], args: argparse.Namespace, memory: PeakMemory
) -> dict:
    tally = Tally()
    photos = {
        "bomb 20000x20000": flat_png(20000, 20000, 1),
        "RGBA 8900x8900": flat_png(8900, 8900, 4),
        "heavy 5000x5000": flat_png(5000, 5000, 3),
        "face photo": probes[0],  # legal and light, then matched against the whole gallery
    }
    attackers = [
        Attacker(base, photos, tally, args.trickle, args.guess_passwords) for _ in range(args.attackers)
    ]
    for attacker in attackers:
        await attacker.open_portal()
    alone: list[float] = []
    attacked: list[float] = []
    errors: list[str] = []
    peaks = {"alone": 0, "attacked": 0}
    for number in range(args.rounds):
        for label, crowd, latencies in (("alone", [], alone), ("attacked", attackers, attacked)):
            console.print(
                f"round {number + 1}/{args.rounds}: investigators {label} for {args.seconds:.0f} s…"
            )
            memory.phase()
            found, failed = await phase(base, tokens, probes, crowd, args.seconds, args.only)
            latencies += found
            errors += failed
            peaks[label] = max(peaks[label], memory.peak_kib)
    for attacker in attackers:
        await attacker.client.aclose()
    return {
        "alone": summary(alone),
        "attacked": summary(attacked),
        "p95_ratio": percentile(attacked, 95) / percentile(alone, 95),
        "rss_peak_mib": {label: round(kib / 1024) for label, kib in peaks.items()}
        | {"whole_run": round(memory.high_water_mib())},
        "investigator_errors": len(errors),
        "first_investigator_errors": errors[:5],
        "attacks": sum(tally.answers.values()),
        "attack_5xx": tally.count(lambda status: status.startswith("5")),
        "attack_5xx_not_shed": tally.count(
            lambda status: status.startswith("5") and not status.endswith("shed")
        ),
        "answers": {f"{kind}: {status}": n for (kind, status), n in sorted(tally.answers.items())},
    }


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "searches": len(latencies),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--investigators", type=int, default=4, help="investigators searching in a loop")
    parser.add_argument("--attackers", type=int, default=8, help="anonymous attacking clients")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase (alone, attacked)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two phases")
    parser.add_argument("--trickle", type=float, default=10.0, help="seconds a slow body trickles")
    parser.add_argument("--gallery", type=int, default=300, help="photos in the gallery")
    parser.add_argument(
        "--guess-passwords",
        action="store_true",
        help="also wrong passwords to /api/v1/auth/token (throttled: 429)",
    )
    parser.add_argument("--only", default="", help="only the attacks whose name holds this, e.g. 'portal '")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="facetrace-hostile-") as tmp:
        data_dir = Path(tmp) / "var"
        environment = server_environment(FACETRACE_PORTAL_REQUESTS_PER_HOUR="1000000")
        settings = Settings(data_dir=data_dir, workers=2)
        gallery, probes = gallery_and_probes(Path(tmp), args.gallery)
        console.print(f"Ingesting {len(gallery)} photos into a fresh gallery…")
        faces = ingest(
            settings,
            [str(p) for p in gallery],
            policy=GovernedCollection(settings),
            source_name="hostile-load",
            workers=2,
        ).faces
        port = free_port()
        server = start_server(data_dir, port, environment)
        log: list[str] = []  # the server's stderr, read as it comes so that the pipe never fills
        reading = threading.Thread(target=lambda: log.extend(line.decode() for line in server.stderr or ()))
        reading.start()
        try:
            base = f"http://127.0.0.1:{port}"
            tokens = tokens_for(base, args.investigators)
            with PeakMemory(server.pid) as memory:
                report = asyncio.run(rounds(base, tokens, probes, args, memory))
        finally:
            server.terminate()
            server.wait(timeout=30)
            reading.join()

    errors = [line.rstrip() for line in log if "Traceback" in line or "ERROR" in line or "Error:" in line]
    report |= vars(args) | {"gallery_faces": faces, "server_log_errors": errors}
    show(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hostile_load.json").write_text(json.dumps(report, indent=2))
    console.print(f"wrote {RESULTS / 'hostile_load.json'}; command: python {shlex.join(sys.argv)}")


def show(report: dict) -> None:
    alone, attacked = report["alone"], report["attacked"]
    crowd = (
        f"{report['investigators']} investigators searching, alone and with {report['attackers']} attackers"
    )
    table = Table(title=crowd)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in (
        ("gallery faces", f"{report['gallery_faces']:,}"),
        ("searches alone / attacked", f"{alone['searches']} / {attacked['searches']}"),
        ("p50 ms alone / attacked", f"{alone['p50_ms']:.0f} / {attacked['p50_ms']:.0f}"),
        ("p95 ms alone / attacked", f"{alone['p95_ms']:.0f} / {attacked['p95_ms']:.0f}"),
        ("p95 attacked ÷ alone (target ≤ 1.5)", f"{report['p95_ratio']:.2f}"),
        (
            "server RSS peak MiB alone / attacked / whole run",
            "{alone} / {attacked} / {whole_run}".format(**report["rss_peak_mib"]),
        ),
        ("investigators' failed searches", str(report["investigator_errors"])),
        ("attacks sent", f"{report['attacks']:,}"),
        ("5xx answers to attacks (503 shed with Retry-After included)", str(report["attack_5xx"])),
        ("5xx other than a 503 shed (must be 0)", str(report["attack_5xx_not_shed"])),
    ):
        table.add_row(label, value)
    console.print(table)
    answers = Table(title="What the attacks got back")
    answers.add_column("attack: status")
    answers.add_column("count", justify="right")
    for label, count in report["answers"].items():
        answers.add_row(label, str(count))
    console.print(answers)
    for line in report["server_log_errors"][:20]:
        console.print(f"[red]server log[/] {line}", highlight=False)
    for error in report["first_investigator_errors"]:
        console.print(f"[red]investigator error[/] {error}", highlight=False)


if __name__ == "__main__":
    main()
