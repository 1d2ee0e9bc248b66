"""What the gallery holds: sources, images, faces, index files and their size on disk."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from facetrace.catalog import repository
from facetrace.core.config import Settings
from facetrace.index.ivf_pq_index import side_files
from facetrace.index.stores import open_index
from facetrace.store.engine import open_catalog


def _sqlite_bytes(url: str) -> int | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    base = Path(parsed.database)
    return sum(p.stat().st_size for p in (base, Path(f"{base}-wal"), Path(f"{base}-shm")) if p.exists())


def gallery_stats(settings: Settings) -> dict[str, Any]:
    sessions = open_catalog(settings.catalog_url)
    with sessions() as session:
        totals = repository.totals(session)
        sources = [asdict(s) for s in repository.source_stats(session)]
        per_model = repository.faces_per_model(session)
    indexes = (
        _milvus_collections(settings, sessions)
        if settings.vector_store == "milvus"
        else _faiss_files(settings)
    )
    return {
        "data_dir": str(settings.data_dir),
        "catalog": make_url(settings.catalog_url).render_as_string(hide_password=True),
        "catalog_bytes": _sqlite_bytes(settings.catalog_url),
        **totals,
        "faces_per_model": per_model,
        "sources": sources,
        "indexes": indexes,
    }


def _faiss_files(settings: Settings) -> list[dict[str, Any]]:
    """Each FAISS index file, described by its meta file (the index itself is not loaded); its size
    counts the lists and 8-bit code files of a compressed index."""
    indexes = []
    for path in sorted(settings.index_dir.glob("*.faiss")):
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        indexes.append(
            {
                "file": str(path),
                "model": meta.get("model_id"),
                "kind": meta.get("kind"),
                "vectors": meta.get("count"),
                "bytes": sum(p.stat().st_size for p in [path, meta_path, *side_files(path)] if p.exists()),
                "saved_at": meta.get("saved_at"),
            }
        )
    return indexes


def _milvus_collections(settings: Settings, sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    """The Milvus collection of each model the catalog holds faces of, asked for its count."""
    indexes = []
    with sessions() as session:
        dims = {
            model_id: repository.embedding_dim(session, model_id)
            for model_id in repository.faces_per_model(session)
        }
    for model_id, dim in sorted(dims.items()):
        index = open_index(settings, model_id, dim)
        indexes.append(
            {
                "file": index.location,
                "model": model_id,
                "kind": index.kind,
                "vectors": len(index),
                "bytes": index.size_on_disk() or None,  # a Milvus server does not say
                "saved_at": None,
            }
        )
    return indexes
