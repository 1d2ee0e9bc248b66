"""Over a thousand hostile files (see ``hostile_corpus``) through the decoder, ingest, the search API and
the rights portal; Hypothesis for the text and number fields of the forms.

What must hold: no crash (no exception but a refusal, no dead worker), no 5xx, every refusal with a
reason (the ingest's failures list, an RFC 9457 problem with a detail), and nothing half-written to
the catalog: every stored image has its sighting and its faces, the faces are exactly the index's
vectors, no face id twice, and a refused file leaves no row. The whole corpus goes through the decoder
and ingest; a stratified subset, covering every generator, through the HTTP routes (which detect
faces in whatever decodes, so cost more per file).
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import select

from facetrace.core.config import Settings
from facetrace.core.errors import ImageError
from facetrace.index.faiss_files import open_faiss_index
from facetrace.ingest.pipeline import IngestStats
from facetrace.store.catalog_models import Face, Sighting
from facetrace.store.catalog_models import Image as ImageRow
from facetrace.store.engine import open_catalog
from facetrace.vision.decode import SUPPORTED_FORMATS, decode_image
from facetrace.vision.factory import build_embedder
from support.api import ADMIN_PASSWORD, PROBLEM, USER_PASSWORD, Api, serving_api
from support.catalogs import Catalogs
from support.hostile_corpus import EXTENSIONS, HostileFile, build_corpus, stratified, write_corpus
from support.ingesting import ingest
from support.photos import SHARED_FACES, encode

PURPOSE = {
    "case_ref": "CASE-2026-16",
    "offence": "homicide",
    "justification": "a hostile probe, refused well",
}
#: Files per generator family sent to the HTTP routes (the whole corpus goes through ingest).
PER_FAMILY = 15
#: What a refused file's reason must not look like: an exception's repr, or a worker that died.
CRASH = re.compile(r"^[A-Z]\w*(Error|Exception|Exit)\b|crashed a worker|Traceback")
MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
MIME |= {".gif": "image/gif", ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff"}


@pytest.fixture(scope="module")
def corpus(astronaut_rgb: np.ndarray) -> list[HostileFile]:
    return build_corpus(astronaut_rgb)


@pytest.fixture(scope="module")
def shared_photos() -> list[tuple[str, bytes]]:
    """Two real photos of the shared face data, truncated like the astronaut (skipped when absent)."""
    if not SHARED_FACES.is_dir():
        pytest.skip(f"needs the shared face data at {SHARED_FACES} (present in CI, absent in a fresh clone)")
    photos = sorted(SHARED_FACES.rglob("*.jpg"))[:2]
    return [(f"shared-{n}.jpg", path.read_bytes()) for n, path in enumerate(photos)]


def test_the_corpus_has_a_thousand_files_and_bombs_of_every_accepted_format(
    corpus: list[HostileFile],
) -> None:
    assert len(corpus) >= 1000
    assert len({file.data for file in corpus}) > 900  # not one file a thousand times
    bombed = {Path(file.name).suffix for file in corpus if file.family == "bomb"}
    assert {EXTENSIONS[fmt] for fmt in SUPPORTED_FORMATS} <= bombed
    truncated = {Path(file.name).suffix for file in corpus if file.family == "truncated"}
    assert {EXTENSIONS[fmt] for fmt in SUPPORTED_FORMATS} == truncated
    assert build_corpus(np.asarray(Image.fromarray(np.zeros((8, 8, 3), np.uint8)))) != corpus
    assert [(f.name, f.data) for f in stratified(corpus, PER_FAMILY)] == [
        (f.name, f.data) for f in stratified(corpus, PER_FAMILY)
    ]


def _decode_each(files: list[HostileFile], limits: Settings) -> Counter[str]:
    """Decode every file: pixels or an ImageError with a reason, never another exception nor a
    numeric warning (NaN cast to pixels); returns how many of each family decoded."""
    decoded: Counter[str] = Counter()
    for file in files:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            try:
                image = decode_image(
                    file.data, max_pixels=limits.max_image_pixels, max_bytes=limits.max_image_bytes
                )
            except ImageError as exc:
                assert str(exc).strip(), file.name
                continue
        assert image.bgr.dtype == np.uint8 and image.bgr.ndim == 3 and image.bgr.shape[2] == 3, file.name
        assert image.width > 0 and image.height > 0, file.name
        decoded[file.family] += 1
    return decoded


def test_the_decoder_refuses_every_hostile_file_with_a_reason_or_decodes_it_whole(
    corpus: list[HostileFile], settings: Settings
) -> None:
    decoded = _decode_each(corpus, settings)
    for family in ("truncated", "empty-or-zero", "noise"):
        assert decoded[family] < 0.1 * sum(f.family == family for f in corpus), family
    print(f"decoded {sum(decoded.values())} of {len(corpus)} hostile files: {dict(decoded)}")


def test_truncated_real_photos_are_refused_or_decoded_whole(
    shared_photos: list[tuple[str, bytes]], astronaut_rgb: np.ndarray, settings: Settings
) -> None:
    truncated = [
        f for f in build_corpus(astronaut_rgb, shared_photos) if f.name.startswith("truncated--shared")
    ]
    assert len(truncated) == 2 * 49
    _decode_each(truncated, settings)


def assert_gallery_whole(settings: Settings, refused: set[str]) -> tuple[int, int]:
    """Every image fully present (sighting, faces as counted, faces in the index, each once) and no
    row for a refused location; returns (images, faces)."""
    with open_catalog(settings.catalog_url)() as session:
        images = session.scalars(select(ImageRow)).all()
        for image in images:
            assert image.sightings, f"image {image.id} stored without where it was seen"
            assert image.face_count == len(image.faces), f"image {image.id}: faces missing"
        face_ids = sorted(session.scalars(select(Face.id)))
        locations = set(session.scalars(select(Sighting.location)))
    if face_ids:
        embedder = build_embedder(settings)
        index_ids = open_faiss_index(settings.index_dir, embedder.model_id, embedder.dim).ids().tolist()
        assert len(index_ids) == len(set(index_ids)), "a face id twice in the index"
        assert sorted(index_ids) == face_ids, "the index and the catalog hold different faces"
    assert not refused & locations, f"refused yet stored: {sorted(refused & locations)[:5]}"
    return len(images), len(face_ids)


def _ingest_checked(settings: Settings, files: list[HostileFile], folder: Path) -> IngestStats:
    written = write_corpus(files, folder)
    stats = ingest(settings, [str(folder)], source_name="hostile-files", workers=1)
    refused = {location for location, _ in stats.failures}
    crashed = [
        (location, reason)
        for location, reason in stats.failures
        if CRASH.search(reason) or not reason.strip()
    ]
    assert not crashed, crashed[:10]
    assert refused <= set(written)
    assert stats.done == len(written)  # every file stored, seen again (same bytes) or refused
    images, faces = assert_gallery_whole(settings, refused)
    with open_catalog(settings.catalog_url)() as session:
        stored = set(session.scalars(select(Sighting.location)))
    assert stored | refused == set(written)
    print(
        f"ingested {len(written)} hostile files: {stats.new_images} new images ({faces} faces), "
        f"{stats.known_images} copies, {len(stats.failures)} refused with a reason; catalog holds {images}"
    )
    return stats


@pytest.mark.slow
def test_ingesting_the_whole_corpus_crashes_nothing_and_half_writes_nothing(
    corpus: list[HostileFile], settings: Settings, tmp_path: Path
) -> None:
    stats = _ingest_checked(settings, corpus, tmp_path / "hostile")
    assert len(stats.failures) > len(corpus) / 2  # mostly refusals: the corpus is hostile
    reasons = Counter(reason.split(":")[0] for _, reason in stats.failures)
    print("refusals by reason:", reasons.most_common(8))


def test_ingesting_truncated_real_photos_half_writes_nothing(
    shared_photos: list[tuple[str, bytes]], astronaut_rgb: np.ndarray, settings: Settings, tmp_path: Path
) -> None:
    truncated = [
        f for f in build_corpus(astronaut_rgb, shared_photos) if f.name.startswith("truncated--shared")
    ]
    _ingest_checked(settings, truncated, tmp_path / "shared-cuts")


# --- over HTTP: the search API, the portal, the forms ------------------------------------------------


@pytest.fixture(scope="module")
def hostile_api(
    tmp_path_factory: pytest.TempPathFactory, astronaut_jpeg: bytes, catalogs: Catalogs
) -> Iterator[Api]:
    """A server with the astronaut in its gallery, quotas and the portal's rate limit out of the way."""
    root = tmp_path_factory.mktemp("hostile-api")
    (root / "photos").mkdir()
    (root / "photos" / "astronaut.jpg").write_bytes(astronaut_jpeg)
    with catalogs.fresh() as database_url:
        settings = Settings(
            data_dir=root / "var",
            database_url=database_url,
            workers=1,
            admin_password=ADMIN_PASSWORD,
            searches_per_day=1_000_000,
            burst_searches_per_hour=1_000_000,
            portal_requests_per_hour=1_000_000,
        )
        ingest(settings, [str(root / "photos")], source_name="nasa", jurisdiction="US")
        with serving_api(settings) as api:
            yield api


#: Answers may be slow on a busy machine (the portal queues its analyses): no timeout should pass for a 5xx.
PATIENCE = httpx.Timeout(120)


def patient(client: httpx.Client) -> httpx.Client:
    client.timeout = PATIENCE
    return client


@pytest.fixture(scope="module")
def investigator(hostile_api: Api) -> httpx.Client:
    return patient(hostile_api.as_role("investigator"))


def _photo_part(file: HostileFile) -> dict[str, tuple[str, bytes, str]]:
    return {"photo": (file.name, file.data, MIME.get(Path(file.name).suffix, "image/jpeg"))}


@pytest.mark.slow
def test_hostile_probes_get_a_problem_with_a_detail_never_a_5xx(
    hostile_api: Api, investigator: httpx.Client, corpus: list[HostileFile]
) -> None:
    statuses: Counter[int] = Counter()
    for file in stratified(corpus, PER_FAMILY):
        response = investigator.post("/api/v1/search", data=PURPOSE, files=_photo_part(file))
        statuses[response.status_code] += 1
        assert response.status_code < 500, (file.name, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"] == PROBLEM, (file.name, response.text)
            assert response.json()["detail"].strip(), file.name
        else:
            assert "results" in response.json(), file.name
    assert statuses[200] and sum(n for status, n in statuses.items() if 400 <= status < 500)
    print("search API statuses:", dict(statuses))


def portal_visitor(api: Api) -> tuple[httpx.Client, str]:
    visitor = patient(api.client())
    opened = visitor.get("/portal")
    action = re.search(r'action="(/portal\?csrf=[^"]+)"', opened.text)
    assert opened.status_code == 200 and action is not None
    return visitor, action.group(1)


@pytest.mark.slow
def test_hostile_selfies_at_the_portal_never_get_a_5xx(hostile_api: Api, corpus: list[HostileFile]) -> None:
    visitor, action = portal_visitor(hostile_api)
    statuses: Counter[int] = Counter()
    for file in stratified(corpus, PER_FAMILY, seed=17):
        fields = {"kind": "access", "contact": "me@example.org"}
        response = visitor.post(action, data=fields, files=_photo_part(file))
        statuses[response.status_code] += 1
        assert response.status_code < 500, (file.name, response.text[:500])
        if response.status_code >= 400:
            assert response.text.strip(), file.name
    assert statuses[400]
    print("portal statuses:", dict(statuses))


# Hypothesis: whatever a client types in a form field, the answer is never a 5xx.

FORM_TEXT = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40).map(lambda s: f"\x00{s}\x00"),
    st.sampled_from(["", " ", "\x00", "0", "-1", "1e309", "NaN", "inf", "²", "٣", "1_000", "9" * 400]),
    st.integers().map(str),
    st.floats().map(str),
)
EXAMPLES = hypothesis_settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SEARCH_FIELDS = ("case_ref", "offence", "justification", "authorisation_ref", "k", "face", "min_score")


@pytest.fixture(scope="module")
def small_probe(astronaut_rgb: np.ndarray) -> bytes:
    """The astronaut at a third of her size: one face, quick to find."""
    return encode(np.asarray(Image.fromarray(astronaut_rgb).resize((170, 170))), "JPEG", quality=90)


def assert_no_5xx(response: httpx.Response, sent: object) -> None:
    assert response.status_code < 500, (sent, response.status_code, response.text[:500])


#: Values that once broke a number or text field somewhere, tried on every form first.
NASTY = (
    {"face": "²", "k": "٣"},
    {"face": "9" * 400, "k": "9" * 400, "min_score": "1e309"},
    {"min_score": "NaN", "face": "0", "k": "-1"},
    {"case_ref": "\x00", "justification": "\x00" * 20, "authorisation_ref": "\x00"},
    {"offence": "homicide\x00", "source": "\x00", "jurisdiction": "\x00\x00"},
)


def nasty_examples(test):  # type: ignore[no-untyped-def]
    for fields in NASTY:
        test = example(fields=fields)(test)
    return test


@EXAMPLES
@nasty_examples
@given(fields=st.dictionaries(st.sampled_from([*SEARCH_FIELDS, "source", "jurisdiction"]), FORM_TEXT))
def test_search_api_fields_never_get_a_5xx(
    investigator: httpx.Client, small_probe: bytes, fields: dict[str, str]
) -> None:
    response = investigator.post(
        "/api/v1/search", data=PURPOSE | fields, files={"photo": ("p.jpg", small_probe, "image/jpeg")}
    )
    assert_no_5xx(response, fields)
    if response.status_code >= 400:
        assert response.headers["content-type"] == PROBLEM and response.json()["detail"], fields


def browser_signed_in(api: Api) -> tuple[httpx.Client, str]:
    """A browser session of a new investigator, signed in through the login form; its CSRF token."""
    name, _ = api.new_user("investigator")
    browser = patient(api.client())
    token = _csrf(browser.get("/login").text)
    signed_in = browser.post("/login", data={"csrf": token, "username": name, "password": USER_PASSWORD})
    assert signed_in.status_code in (302, 303), signed_in.text
    return browser, _csrf(browser.get("/search").text)


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


@pytest.fixture(scope="module")
def browser(hostile_api: Api) -> tuple[httpx.Client, str]:
    return browser_signed_in(hostile_api)


@EXAMPLES
@nasty_examples
@given(fields=st.dictionaries(st.sampled_from([*SEARCH_FIELDS, "source", "jurisdiction"]), FORM_TEXT))
def test_web_search_form_fields_never_get_a_5xx(
    browser: tuple[httpx.Client, str], small_probe: bytes, fields: dict[str, str]
) -> None:
    client, token = browser
    response = client.post(
        "/search",
        data=PURPOSE | fields | {"csrf": token},
        files={"photo": ("p.jpg", small_probe, "image/jpeg")},
    )
    assert_no_5xx(response, fields)


@EXAMPLES
@example(fields={"kind": "access\x00", "urls": "\x00 javascript:alert(1) " + "https://a.example/" * 500})
@example(fields={"kind": "erasure", "contact": "\x00" * 300, "consent": "yes\x00"})
@given(fields=st.dictionaries(st.sampled_from(["kind", "urls", "contact", "consent"]), FORM_TEXT))
def test_portal_fields_never_get_a_5xx(hostile_api: Api, fields: dict[str, str]) -> None:
    visitor, action = portal_visitor(hostile_api)
    response = visitor.post(action, data={"kind": "access", "urls": "https://a.example/1.jpg"} | fields)
    assert_no_5xx(response, fields)


@hypothesis_settings(EXAMPLES, max_examples=20)  # each example hashes two passwords
@example(username="admin\x00", password="\x00")
@example(username="\x00" * 200, password="x" * 5000)
@given(username=FORM_TEXT, password=FORM_TEXT)
def test_login_form_fields_never_get_a_5xx(hostile_api: Api, username: str, password: str) -> None:
    visitor = patient(hostile_api.client())
    token = _csrf(visitor.get("/login").text)
    response = visitor.post("/login", data={"csrf": token, "username": username, "password": password})
    assert_no_5xx(response, (username, password))
    token_response = httpx.post(
        f"{hostile_api.url}/api/v1/auth/token",
        data={"username": username, "password": password},
        timeout=PATIENCE,
    )
    assert_no_5xx(token_response, (username, password))
