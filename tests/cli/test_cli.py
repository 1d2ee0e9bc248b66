"""The ``facetrace`` command as a user runs it, on real files with real exit codes, run in-process
(``support.cli_runner``); what only a real process shows is in test_cli_process.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facetrace.core.config import Settings
from facetrace.store.engine import SCHEMA_HEAD
from support.api import USER_PASSWORD
from support.catalogs import catalog_rows
from support.cli_runner import facetrace
from support.photos import encode

PURPOSE = ("--case-ref", "C-1", "--offence", "homicide", "--purpose", "suspect seen on camera 4")
LEGAL = ("--legal-basis", "Art. 6(1)(e) GDPR, test archive")


@pytest.fixture
def gallery_dir(tmp_path: Path, photo_folder: Path) -> Path:
    data_dir = tmp_path / "var"
    registered = facetrace(data_dir, "source", "add", "demo", *LEGAL, "--jurisdiction", "fr")
    assert registered.returncode == 0, registered.stderr
    done = facetrace(data_dir, "ingest", str(photo_folder), "--source", "demo", "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert "new images analysed" in done.stdout and "faces found" in done.stdout
    return data_dir


@pytest.mark.empty_catalog
def test_init_creates_the_catalog_and_shows_how_to_start(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")  # the catalog the command will use
    revision = "SELECT version_num FROM alembic_version"
    assert catalog_rows(settings, revision) == []  # no catalog yet (or, on PostgreSQL, an empty database)
    done = facetrace(tmp_path / "var", "init")
    assert done.returncode == 0, done.stderr
    assert "facetrace ingest PATH --source NAME" in done.stdout
    assert "facetrace search PHOTO" in done.stdout
    assert catalog_rows(settings, revision) == [(SCHEMA_HEAD,)]


def test_search_json(gallery_dir: Path, tmp_path: Path, astronaut_jpeg: bytes) -> None:
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(astronaut_jpeg)
    done = facetrace(gallery_dir, "search", str(probe), *PURPOSE, "-k", "5", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["gallery_size"] == 1 and len(result["results"]) == 1
    hit = result["results"][0]
    assert hit["rank"] == 1 and hit["score"] > 0.99
    assert hit["sightings"][0]["location"].endswith("astronaut.jpg")
    assert hit["sightings"][0]["source"] == "demo" and hit["sightings"][0]["jurisdiction"] == "FR"
    assert len(result["probe"]["sha256"]) == 64 and result["probe"]["face_used"] == 1


def test_search_table(gallery_dir: Path, tmp_path: Path, astronaut_jpeg: bytes) -> None:
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(astronaut_jpeg)
    done = facetrace(gallery_dir, "search", str(probe), *PURPOSE)
    assert done.returncode == 0, done.stderr
    assert "1 face(s) found" in done.stdout and "not identifications" in done.stdout
    assert "demo" in done.stdout


def test_search_narrowed_to_a_source_and_a_jurisdiction(
    gallery_dir: Path, tmp_path: Path, astronaut_jpeg: bytes
) -> None:
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(astronaut_jpeg)
    done = facetrace(gallery_dir, "search", str(probe), *PURPOSE, "--source", "demo", "--jurisdiction", "fr")
    assert done.returncode == 0, done.stderr
    shown = " ".join(done.stdout.split())  # Rich wraps lines at the terminal's width
    assert "narrowed to sources demo · jurisdictions FR" in shown and "not identifications" in shown
    typo = facetrace(gallery_dir, "search", str(probe), *PURPOSE, "--source", "dem0")
    assert typo.returncode != 0 and "no source named dem0" in typo.stderr + typo.stdout


def test_stats(gallery_dir: Path) -> None:
    done = facetrace(gallery_dir, "stats", "--json")
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    assert (stats["sources"][0]["name"], stats["images"], stats["faces"]) == ("demo", 2, 1)
    assert stats["indexes"][0]["kind"] == "flat" and stats["indexes"][0]["vectors"] == 1
    assert stats["indexes"][0]["bytes"] > 0
    if stats["catalog"].startswith("sqlite"):
        assert stats["catalog_bytes"] > 0
    else:  # only a SQLite file has a size to report
        assert stats["catalog_bytes"] is None
    assert facetrace(gallery_dir, "stats").returncode == 0


def test_reindex_rebuilds_from_the_catalog(gallery_dir: Path) -> None:
    for index_file in (gallery_dir / "index").glob("*.faiss"):
        index_file.unlink()
    done = facetrace(gallery_dir, "reindex")
    assert done.returncode == 0, done.stderr
    assert "as flat with 1 faces" in done.stdout
    compressed = facetrace(gallery_dir, "reindex", "--kind", "ivf-pq")
    assert compressed.returncode == 0, compressed.stderr
    assert "as ivf-pq with 1 faces" in compressed.stdout
    stats = json.loads(facetrace(gallery_dir, "stats", "--json").stdout)
    assert stats["indexes"][0]["kind"] == "ivf-pq"
    [codes] = (gallery_dir / "index").glob("*.codes-*")
    assert stats["indexes"][0]["bytes"] > codes.stat().st_size > 0  # the codes file is counted
    assert "as ivf-pq" in facetrace(gallery_dir, "reindex").stdout  # keeps its structure
    assert "invalid value" in facetrace(gallery_dir, "reindex", "--kind", "hnsw").stderr.lower()


def test_clear_errors_for_bad_probes_and_options(
    gallery_dir: Path, tmp_path: Path, coffee_png: bytes
) -> None:
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("hello")
    coffee = tmp_path / "coffee.png"
    coffee.write_bytes(coffee_png)
    cases = [
        (("search", str(not_an_image), *PURPOSE), "not an image"),
        (("search", str(coffee), *PURPOSE), "no face found in the probe"),
        (("search", str(coffee)), "a search needs a case reference (--case-ref)"),
        (("ingest", str(coffee), "--source", "x"), "facetrace source add x"),
    ]
    for arguments, message in cases:
        done = facetrace(gallery_dir, *arguments)
        assert done.returncode == 1, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr


def test_acting_as_a_user_and_the_audit_trail(
    gallery_dir: Path, tmp_path: Path, astronaut_jpeg: bytes
) -> None:
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(astronaut_jpeg)
    assert facetrace(gallery_dir, "unit", "add", "north").returncode == 0
    add = ("user", "add", "ivy", "--role", "investigator", "--unit", "north", "--password-stdin")
    done = facetrace(gallery_dir, *add, stdin=f"{USER_PASSWORD}\n")
    assert done.returncode == 0, done.stderr
    minted = facetrace(gallery_dir, "token", "create", "ivy")  # the operator mints no token for her
    assert minted.returncode == 1 and "command-line identity" in minted.stderr
    mine = facetrace(
        gallery_dir, "token", "create", "ivy", "--days", "7", "--password-stdin", stdin=USER_PASSWORD
    )
    token = mine.stdout.strip().splitlines()[-1]
    assert token.startswith("ftk_")

    assert facetrace(gallery_dir, "search", str(probe), *PURPOSE, "--json", token=token).returncode == 0
    denied = facetrace(gallery_dir, "ingest", str(probe), "--source", "x", token=token)
    assert denied.returncode == 1 and "ivy (investigator) may not sources.manage" in denied.stderr
    assert facetrace(gallery_dir, "audit", "verify", token=token).returncode == 1  # no audit role either
    assert "unknown token" in facetrace(gallery_dir, "search", str(probe), *PURPOSE, token="bad").stderr

    verified = facetrace(gallery_dir, "audit", "verify")
    assert verified.returncode == 0 and "audit log intact" in verified.stdout
    export = tmp_path / "audit.json"
    assert facetrace(gallery_dir, "audit", "export", "-o", str(export)).returncode == 0
    document = json.loads(export.read_text())
    trail = [(e["user_name"], e["action"], e["outcome"]) for e in document["entries"]]
    assert ("ivy", "search", "done") in trail
    assert ("ivy", "sources.manage", "denied") in trail and ("ivy", "audit.read", "denied") in trail
    assert trail[
        :4
    ] == [  # the first command seeds the deployment's policy; the fixture's registration, ingest
        ("operator", "policy.seed", "done"),
        ("operator", "sources.add", "done"),
        ("operator", "ingest.started", "done"),
        ("operator", "sources.manage", "done"),
    ]
    assert facetrace(gallery_dir, "audit", "verify", "--export", str(export)).returncode == 0
    csv_file = tmp_path / "audit.csv"
    assert facetrace(gallery_dir, "audit", "export", "-o", str(csv_file), "--format", "csv").returncode == 0
    assert csv_file.read_text().splitlines()[0].startswith("id,at,user_name")
    sign_off = json.loads((tmp_path / "audit.csv.head.json").read_text())
    # Later than the JSON export's head: the exports and verifications are in the log themselves.
    assert sign_off["head"]["seq"] > document["head"]["seq"] and len(sign_off["head"]["hash"]) == 64


def test_calibrate_refuses_a_folder_too_small_to_say_anything(
    gallery_dir: Path, tmp_path: Path, astronaut_jpeg: bytes
) -> None:
    for person in ("a", "b"):
        (tmp_path / "labelled" / person).mkdir(parents=True)
        (tmp_path / "labelled" / person / "1.jpg").write_bytes(astronaut_jpeg)
    done = facetrace(gallery_dir, "calibrate", str(tmp_path / "labelled"), "--workers", "1")
    assert done.returncode == 1 and "gives only 1 impostor pairs" in done.stderr


def test_test_mode_searches_the_demo_gallery_only(
    gallery_dir: Path, tmp_path: Path, astronaut_rgb: np.ndarray, astronaut_jpeg: bytes
) -> None:
    probe = tmp_path / "colleague.jpg"
    probe.write_bytes(astronaut_jpeg)  # in the production gallery (the fixture ingested it)
    empty = facetrace(gallery_dir, "search", str(probe), "--test")
    assert empty.returncode == 1 and "demo gallery is empty" in empty.stderr

    demo_photo = tmp_path / "demo" / "mirrored.jpg"
    demo_photo.parent.mkdir()
    demo_photo.write_bytes(encode(astronaut_rgb[:, ::-1].copy(), "JPEG", quality=90))
    assert facetrace(gallery_dir, "source", "add", "demo-set", *LEGAL, "--jurisdiction", "FR").returncode == 0
    demo_ingest = facetrace(gallery_dir, "ingest", str(demo_photo.parent), "--source", "demo-set", "--demo")
    assert demo_ingest.returncode == 0, demo_ingest.stderr
    done = facetrace(gallery_dir, "search", str(probe), "--test", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["gallery_size"] == 1
    assert [r["sightings"][0]["location"] for r in result["results"]] == [
        str(demo_photo)
    ]  # never the real one

    export = tmp_path / "audit.json"
    facetrace(gallery_dir, "audit", "export", "-o", str(export))
    entries = json.loads(export.read_text())["entries"]
    assert not [e for e in entries if e["action"] == "search"]  # nothing touched the real gallery
    (test,) = [e for e in entries if e["action"] == "search.test"]
    assert test["details"]["gallery"] == "demo" and test["result_count"] == 1 and test["probe_sha256"]


def test_governance_commands_are_wired(gallery_dir: Path, tmp_path: Path, astronaut_jpeg: bytes) -> None:
    """One pass over the commands a DPO, a supervisor and an investigator use (the bootstrap operator)."""
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(astronaut_jpeg)

    def ok(*arguments: str) -> str:
        done = facetrace(gallery_dir, *arguments)
        assert done.returncode == 0, (arguments, done.stderr)
        return done.stdout

    assert "AUTH-" in ok("authorisation", "request", "--case-ref", "C-1", "--purpose", "a kidnapping case")
    assert "AUTH-" in ok("authorisation", "list", "--pending")
    ok("search", str(probe), *PURPOSE)
    assert json.loads(ok("report", "usage", "--json"))[0]["searches"] == 1
    ok("report", "annual", "-o", str(tmp_path / "annual"))
    assert (tmp_path / "annual" / "report.html").exists()
    ok("report", "processing", "-o", str(tmp_path / "records"))
    assert (tmp_path / "records" / "records.html").exists()
    assert "RR-" in ok("rights", "file", "access", "--photo", str(probe))
    queue = json.loads(ok("rights", "list", "--json"))
    ok("rights", "verify", queue[0]["reference"])
    assert json.loads(ok("rights", "execute", queue[0]["reference"]))["faces_held"] == 1
    ok("rights", "block", "--domain", "private.example")
    assert "sightings" in ok("retention", "run", "--dry-run")
    assert "faces" in ok("purge", "--jurisdiction", "FR")
    ok(
        "source",
        "add",
        "news",
        *("--kind", "website", "--seed", "https://news.example/"),
        *("--legal-basis", "archive law", "--jurisdiction", "FR"),
    )
    ok("source", "pause", "news")
    assert "paused" in ok("source", "show", "news")
    ok("source", "resume", "news")
    ok("source", "remove", "news")
    assert "news" not in ok("source", "list")


def test_units_accounts_and_their_life_cycle_from_the_command_line(gallery_dir: Path) -> None:
    def run(*arguments: str, token: str | None = None, stdin: str | None = None) -> str:
        done = facetrace(gallery_dir, *arguments, token=token, stdin=stdin)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def refused(*arguments: str, token: str | None = None) -> str:
        done = facetrace(gallery_dir, *arguments, token=token)
        assert done.returncode == 1, done.stdout
        return " ".join(done.stderr.split())  # as one line, however the console wrapped it

    run("unit", "add", "North")
    assert "differs only by case" in refused("unit", "add", "north")
    assert "facetrace unit add South" in refused(
        "user", "add", "ivy", "-r", "investigator", "--unit", "South"
    )
    run(
        "user", "add", "ivy", "-r", "investigator", "--unit", "north", "--password-stdin", stdin=USER_PASSWORD
    )
    run("user", "add", "root", "-r", "admin", "--password-stdin", stdin=USER_PASSWORD)
    # An admin with a password exists: the bootstrap operator is off, the command line needs a token.
    assert "bootstrap operator is off" in refused("user", "list")
    root = run("token", "create", "root", "--password-stdin", stdin=USER_PASSWORD).strip().splitlines()[-1]

    run("user", "add", "scanner", "-r", "investigator", "--service", token=root)
    assert (
        run("token", "create", "scanner", "--days", "30", token=root)
        .strip()
        .splitlines()[-1]
        .startswith("ftk_")
    )
    assert "another person" in refused("token", "create", "ivy", token=root)
    run("user", "disable", "ivy", token=root)
    assert (
        "wrong user name or password"
        in facetrace(gallery_dir, "token", "create", "ivy", "--password-stdin", stdin=USER_PASSWORD).stderr
    )
    run("user", "enable", "ivy", token=root)
    run("user", "roles", "ivy", "-r", "supervisor", token=root)
    run("user", "unit", "ivy", token=root)
    temporary = run("user", "reset-password", "ivy", token=root).strip().splitlines()[-1]
    listing = run("user", "list", token=root)
    assert "must change password" in listing and "service account" in listing
    assert "scanner" in run("token", "list", "scanner", token=root)
    run("user", "password", "ivy", stdin=f"{temporary}\nivy's brand new passphrase\n")
    ivy = run("token", "create", "ivy", "--password-stdin", stdin="ivy's brand new passphrase").strip()
    assert ivy.splitlines()[-1].startswith("ftk_")
