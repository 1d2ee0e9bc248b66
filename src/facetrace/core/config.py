"""All settings in one place.

Every field can be set by an environment variable named ``FACETRACE_<FIELD>``
(e.g. ``FACETRACE_DATA_DIR=/srv/facetrace``) or in a ``.env`` file in the working
directory. Paths are relative to the working directory unless absolute.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Facetrace configuration (environment variables ``FACETRACE_*``)."""

    # allow_inf_nan=False: NaN and infinities are no setting (e.g. "inf" false matches, "nan" rates).
    model_config = SettingsConfigDict(
        env_prefix="FACETRACE_", env_file=".env", extra="ignore", allow_inf_nan=False
    )

    data_dir: Path = Field(Path("var"), description="Where the catalog, index and caches live.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the catalog; default: SQLite file <data_dir>/facetrace.db.",
    )
    workers: int = Field(0, ge=0, description="Worker processes for ingest/eval; 0 = one per core.")
    ingest_engine: Literal["local", "ray"] = Field(
        "local",
        description="Where ingest analyses images: local worker processes, or Ray actors (install .[ray]).",
    )
    ray_address: str | None = Field(
        None,
        description="The Ray cluster to analyse on (e.g. ray://head:10001, or 'auto'); none: a private "
        "Ray instance on this machine for the length of the ingest.",
    )

    # Models. Empty paths mean the YuNet/SFace weights shipped inside the package.
    detector: str = Field("yunet", description="'yunet' (packaged) or 'scrfd' (ONNX file at detector_path).")
    detector_path: Path | None = None
    embedder: str = Field(
        "sface", description="'sface' (packaged) or 'arcface' (ONNX file at embedder_path)."
    )
    embedder_path: Path | None = None

    # Detection.
    detect_score_threshold: float = Field(0.8, gt=0, lt=1)
    detect_nms_threshold: float = Field(0.3, gt=0, lt=1)
    detect_max_side: int = Field(
        1600, ge=160, description="Larger images are downscaled to this side for detection."
    )
    min_face_size: int = Field(
        16, ge=1, description="Faces smaller than this (pixels, short side) are skipped."
    )

    # Decoding limits.
    max_image_pixels: int = Field(80_000_000, ge=1, description="Images above this are refused (bombs).")
    max_image_bytes: int = Field(64 * 1024 * 1024, ge=1)
    max_decode_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024 * 1024,
        description="Memory one image's decoding may take (its pixels in every form the pipeline holds "
        "at once); an image that would need more is refused before it is decoded.",
    )
    max_request_bytes: int = Field(
        1024 * 1024,
        ge=64 * 1024,
        description="The largest request body the server reads where no other limit applies (JSON "
        "bodies); image uploads may hold FACETRACE_MAX_IMAGE_BYTES, the portal "
        "FACETRACE_PORTAL_MAX_UPLOAD_BYTES, login and other web forms 64 KiB.",
    )

    # Search.
    search_k: int = Field(10, ge=1, le=1000)
    max_expected_false_matches: float | None = Field(
        1.0,
        ge=0,
        le=1_000_000,
        description="Hide results at scores where the calibration expects more false matches than this "
        "in a gallery of this size (none: show all).",
    )

    # Vector index.
    vector_store: Literal["faiss", "milvus"] = Field(
        "faiss",
        description="faiss: index files under <data_dir>/index (one machine); milvus: a Milvus "
        "collection per model, for a gallery past one machine.",
    )
    milvus_uri: str | None = Field(
        None,
        description="The Milvus server, e.g. http://milvus:19530 (none: Milvus Lite in <data_dir>/milvus.db, "
        "for tests only: it deletes logically, and one process at a time may open it).",
    )
    milvus_token: SecretStr | None = Field(None, description="'user:password' or an API key for Milvus.")
    milvus_index_type: str = Field(
        "FLAT", description="The Milvus index type a new collection gets (FLAT is exact; e.g. IVF_SQ8, HNSW)."
    )
    index_compress_at: int = Field(
        1_000_000,
        ge=0,
        description="From this many faces, an ingest rebuilds the exact index as IVF-PQ (about 180 B "
        "instead of 512 B per face, a few ms per search at 1M on 2 cores); 0: never on its own.",
    )
    index_scan_share: float = Field(
        0.65,
        gt=0,
        le=1,
        description="The share of its IVF lists a compressed (IVF-PQ) index scans per search: more is "
        "slower and closer to exact (see the README's scale table).",
    )

    # Collection.
    crawl_user_agent: str = Field(
        "FacetraceBot/0.1 (operator not configured)",
        description="Names the crawler, its operator and a contact URL "
        "(e.g. 'FacetraceBot/0.1 (+https://ops.example/bot)').",
    )
    crawl_rate_per_s: float = Field(1.0, gt=0, description="Default requests per second per host.")
    crawl_timeout_s: float = Field(20.0, gt=0)
    crawl_fetch_deadline_s: float = Field(
        30.0,
        gt=0,
        description="The most one crawler request may take, from connecting to its last byte "
        "(crawl_timeout_s bounds each read or connect within it); an overrun is not retried.",
    )
    crawl_max_page_bytes: int = Field(5 * 1024 * 1024, ge=1)
    crawl_max_pages: int = Field(1000, ge=1, description="Default page limit of one crawl.")
    crawl_max_depth: int = Field(5, ge=0)
    import_dir: Path | None = Field(
        None,
        description="The one folder whose subfolders an admin may import through the server (API jobs, "
        "the web app); none: only 'facetrace ingest PATH' on the server's own command line reads folders.",
    )
    job_lease_s: float = Field(
        30.0,
        ge=1,
        allow_inf_nan=False,
        description="A process running a crawl, import or ingest renews its jobs' heartbeat every third of "
        "this; a job whose heartbeat is older died with its process and is marked interrupted.",
    )
    near_duplicate_max_distance: int = Field(
        4,
        ge=0,
        le=16,
        description="Images whose perceptual hashes differ in at most this many of 64 bits are linked as "
        "near-duplicates (resized or re-encoded copies), and a search shows their faces as one result "
        "with every place they were seen. Measured on the dev photos: copies at 0.4x-2x scale and JPEG "
        "quality 30-90 differ by at most 2 bits; different photos by at least 6.",
    )
    face_crop_size: int = Field(
        112,
        ge=0,
        le=512,
        description="Each gallery face keeps a JPEG of itself this many pixels square (about 3.5 KB at 112), "
        "shown on result cards to users whose search returned it and erased with the face; 0: keep none.",
    )

    # Accountability.
    allow_bootstrap: bool | None = Field(
        None,
        description="Let the CLI act as the local bootstrap operator (every role, command line only) "
        "when no token is given. None (default): only while no enabled admin account with a password "
        "exists, i.e. until the first 'facetrace serve' creates one; false: never; true: always "
        "(break-glass, on the host).",
    )
    admin_password: SecretStr | None = Field(
        None,
        description="Password of the first admin account 'facetrace serve' creates when none exists "
        "(none: a generated one, printed once).",
    )
    session_secret: SecretStr | None = Field(
        None,
        description="Key that signs the web app's session cookies (none: a random key kept in "
        "<data_dir>/session.key). Set the same value on every server behind one address.",
    )
    erasure_hmac_key_file: Path | None = Field(
        None,
        description="The secret that keys the hashes by which erasure certificates and their audit entries "
        "name what was erased (none: <data_dir>/erasure.key, created 0600 at first use). Back it up: "
        "without it no URL can be checked against a certificate.",
    )
    audit_key_file: Path | None = Field(
        None,
        description="The Ed25519 private key that signs every audit entry (none: "
        "<data_dir>/audit/signing.key, created 0600 in a 0700 folder at first start; PEM or the raw "
        "32-byte seed). Keep it off the database machine's backups of the catalog; every server "
        "writing one catalog needs the same key.",
    )
    session_hours: int = Field(8, ge=1, le=24 * 7, description="A web login lasts this long.")
    secure_cookies: bool = Field(
        False, description="Send session cookies over HTTPS only (set it when serving behind TLS)."
    )
    portal_requests_per_hour: int = Field(
        5, ge=1, description="Requests one address may file through the public rights portal per hour."
    )
    portal_max_upload_bytes: int = Field(
        8 * 1024 * 1024,
        ge=64 * 1024,
        description="The largest request body the public rights portal reads (photo and fields together); "
        "a larger one is refused with 413 while it is read.",
    )
    analyzers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        le=64,
        description="Face analyzers the server keeps for investigators' searches (default: the CPU cores): "
        "that many probe photos are analysed at once, each analyzer with its own models, and a search "
        "that finds none free within a few seconds is refused with 503 and Retry-After. The portal's "
        "analyzers (FACETRACE_PORTAL_ANALYSIS_CONCURRENCY) are apart from these.",
    )
    portal_analysis_concurrency: int = Field(
        1,
        ge=1,
        le=64,
        description="Photos sent to the public rights portal analysed at once, each by the portal's own face "
        "analyzer, apart from the one investigators' searches use.",
    )
    portal_queue: int = Field(
        4,
        ge=0,
        le=1024,
        description="Portal photos that may wait for analysis; past them a photo is refused with 503 and "
        "Retry-After, before it is decoded.",
    )
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks (comma-separated, e.g. 10.0.0.5,10.1.0.0/16) of the reverse "
        "proxies whose X-Forwarded-For is believed; from anyone else the header is ignored.",
    )
    rights_report_days: int = Field(
        30, ge=1, description="Days an access report stays downloadable before it is deleted."
    )
    # The deployment's policy: these only seed a new catalog (facetrace.governance.deployment_policy);
    # after that the catalog's values bind every process, and only an admin changes them
    # ('facetrace policy set'). Like them, max_expected_false_matches above and offence_categories below.
    authorisation_policy: Literal["none", "required", "urgent"] = Field(
        "none",
        description="none: optional; required: a granted authorisation per search; urgent: a pending one "
        "requested within authorisation_grace_hours is enough, and its results go if it is refused.",
    )
    authorisation_grace_hours: int = Field(48, ge=0, le=24 * 365)
    authorisation_valid_days: int = Field(
        30, ge=1, le=3650, description="A granted authorisation may be searched on for this many days."
    )
    authorisation_scope: Literal["unit", "requester"] = Field(
        "unit",
        description="Who may search on an authorisation: its requester and the members of their unit, "
        "or its requester only.",
    )
    searches_per_day: int = Field(
        50, ge=1, le=10_000_000, description="Searches one user may run per day (UTC)."
    )
    burst_searches_per_hour: int = Field(
        15,
        ge=1,
        le=10_000_000,
        description="More searches than this within an hour raise an alarm for the supervisor.",
    )
    rights_deadline_days: int = Field(30, ge=1, description="Days to answer a data-subject request.")
    subject_match_threshold: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Score from which a gallery face counts as the person in a rights request photo.",
    )
    offence_categories: list[str] = Field(
        default=[
            "homicide",
            "kidnapping",
            "trafficking-in-human-beings",
            "sexual-exploitation-of-children",
            "rape",
            "terrorism",
            "armed-robbery",
            "organised-crime",
            "missing-person",
        ],
        description="The offence categories a search may name (env: a JSON list).",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """``FACETRACE_TRUSTED_PROXIES=10.0.0.5,10.1.0.0/16`` (a list is taken as it is)."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def catalog_url(self) -> str:
        """The catalog's SQLAlchemy URL, defaulting to a SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'facetrace.db').as_posix()}"

    def demo(self) -> Settings:
        """The test-mode gallery: its own catalog and index under ``<data_dir>/demo``, never the real one."""
        return self.model_copy(update={"data_dir": self.data_dir / "demo", "database_url": None})

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def audit_key_path(self) -> Path:
        """Where the audit log's signing key lives (outside the catalog)."""
        return self.audit_key_file or self.data_dir / "audit" / "signing.key"

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1


def get_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, with explicit overrides (e.g. from CLI flags) on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
