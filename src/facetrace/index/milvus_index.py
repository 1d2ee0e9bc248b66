"""Face templates in Milvus: one collection per embedding model, keyed by catalog face id.

Schema. Each model gets its own collection, named ``<prefix>_<model id with every character
outside [A-Za-z0-9_] replaced by "_">_<8 hex digits of the model id's sha256>`` (the digest keeps
two model ids that sanitise alike apart). Two fields: ``id`` INT64, the primary key, set by us
(``auto_id`` off) to the catalog's face id; ``vector`` FLOAT_VECTOR(dim). The metric is inner
product (``IP``), which for Facetrace's L2-normalised templates is cosine similarity. The
collection's consistency level is ``Strong``, so a search sees every add and delete before it.
The model id, dimension and, at each :meth:`MilvusIndex.save`, the count and highest id are
kept as JSON in the collection property ``facetrace``: opening a collection that belongs to
another model or has another dimension raises :class:`~facetrace.core.errors.ModelMismatchError`.

Index type. ``FLAT`` (the default) answers exactly, like the FAISS index; ``IVF_FLAT``,
``IVF_SQ8``, ``HNSW`` and the other Milvus types are approximate and take build parameters
(``nlist``; ``M``, ``efConstruction``) and search parameters (``nprobe``; ``ef``, raised to at
least ``k`` as Milvus requires). An existing collection keeps the index it was built with;
changing the type means dropping the collection and letting the gallery rebuild it from the
catalog. Build parameters are sent nested (``params={"params": {...}}``): pymilvus 3 flattens
un-nested ones, which a Milvus server accepts but Milvus Lite silently drops.

Deletion. Milvus deletes by primary key: ``delete`` writes a tombstone (a delete log), after
which no search or query returns the row, but its bytes stay in the sealed segment files.
They are physically gone only once *compaction* has rewritten those segments without the
deleted rows (and the server's garbage collector has removed the old segment files, after
its ``dataCoord.gc.dropTolerance``). So :meth:`MilvusIndex.save` after a removal requests a
compaction and waits for it to finish. Milvus Lite accepts the request but does nothing with
it: its tombstoned rows stay in the ``.db`` folder's files until its own size-tiered
compaction merges them, so Lite is for tests, never for a gallery that must honour erasure.

Partitioning by source or jurisdiction (not implemented). It would add an INT64 or VARCHAR
scalar field (``source_id``, ``jurisdiction``) and either declare it the partition key
(``is_partition_key=True``; Milvus hashes values into a fixed number of partitions) or create
one named partition per value. Searches would then pass ``filter='jurisdiction in [...]'`` (or
``partition_names``) so that one legal regime's faces can be searched, or dropped wholesale,
without touching the others. The catalog already knows each face's source, so the field would
be filled by :mod:`facetrace.gallery.gallery` when it adds vectors. What holds it back: a face belongs
to an image, and one image may be seen in several sources and jurisdictions (the same press
photo on a French and a US site), while a row has one partition. Rows would have to be per
sighting, not per face, and a jurisdiction purge already deletes the faces no other source saw.

Pointing it at a cluster. ``uri`` is either a local ``*.db`` path, which starts Milvus Lite
inside this process, or a server address such as ``http://milvus:19530`` (``https://`` for
TLS), with ``token`` set to ``"user:password"`` or an API key. Milvus Lite holds a lock on its
folder: one process at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from pymilvus import DataType, MilvusClient

from facetrace.core.errors import ModelMismatchError
from facetrace.index.base import checked_batch

logger = logging.getLogger(__name__)

ID_FIELD = "id"
VECTOR_FIELD = "vector"
#: The collection property that holds Facetrace's record of the collection (JSON).
META_PROPERTY = "facetrace"
#: Index types that compare the query with every vector. BRUTE_FORCE is Milvus Lite's name.
EXACT_INDEX_TYPES = frozenset({"FLAT", "BRUTE_FORCE"})
DEFAULT_BUILD_PARAMS: Mapping[str, Mapping[str, int]] = {
    "IVF_FLAT": {"nlist": 1024},
    "IVF_SQ8": {"nlist": 1024},
    "HNSW": {"M": 16, "efConstruction": 200},
}
DEFAULT_SEARCH_PARAMS: Mapping[str, Mapping[str, int]] = {
    "IVF_FLAT": {"nprobe": 32},
    "IVF_SQ8": {"nprobe": 32},
    "HNSW": {"ef": 64},
}
#: Milvus' largest ``limit`` for one search.
MAX_TOP_K = 16_384
#: Rows per upsert and ids per ``id in [...]`` expression: well inside gRPC's 64 MiB messages.
BATCH = 4_096


def collection_name(prefix: str, model_id: str) -> str:
    """The model's collection: Milvus names allow letters, digits and underscores only."""
    readable = re.sub(r"[^A-Za-z0-9_]+", "_", f"{prefix}_{model_id}")[:200]
    digest = hashlib.sha256(model_id.encode()).hexdigest()[:8]
    name = f"{readable}_{digest}"
    return name if name[0].isalpha() or name[0] == "_" else f"_{name}"


def _redacted(uri: str) -> str:
    """The URI without any user:password in it, for messages."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _chunks(values: np.ndarray, size: int = BATCH) -> Iterator[np.ndarray]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class _LiteServers:
    """Milvus Lite runs a server inside this process per ``.db`` folder, shared by every client
    of that folder and otherwise stopped only at exit. Counting our users lets :meth:`MilvusIndex.close`
    stop it (releasing the folder's lock and files) when the last index on it closes."""

    def __init__(self) -> None:
        self._users: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, path: str) -> None:
        with self._lock:
            self._users[path] = self._users.get(path, 0) + 1

    def release(self, path: str) -> None:
        with self._lock:
            self._users[path] -= 1
            if self._users[path]:
                return
            del self._users[path]
        from milvus_lite.server_manager import server_manager_instance  # Lite only

        server_manager_instance.release_server(path)


_LITE_SERVERS = _LiteServers()


class MilvusIndex:
    """One model's vectors in a Milvus collection; the same surface as :class:`FaissIndex`."""

    kind = "milvus"

    def __init__(
        self,
        client: MilvusClient,
        uri: str,
        collection: str,
        model_id: str,
        dim: int,
        *,
        index_type: str,
        search_params: Mapping[str, Any],
        saved_max_id: int | None,
        lite_path: str | None,
        compaction_timeout_s: float,
    ) -> None:
        self._client = client
        self._uri = uri
        self.collection = collection
        self.model_id = model_id
        self.dim = dim
        self.index_type = index_type
        self.approximate = index_type not in EXACT_INDEX_TYPES
        self._search_params = dict(search_params)
        #: The highest face id in the collection when it was last saved (None: never saved, or
        #: empty; -1: the collection changed since, so the gallery must check it fully).
        self.saved_max_id = saved_max_id
        #: The catalog's highest face id when this index was last checked against it.
        self.synced_max_id: int | None = None
        self._lite_path = lite_path
        self._compaction_timeout_s = compaction_timeout_s
        #: The highest id known to be held, so :meth:`save` need not scan every id to find it.
        self._max_id_hint = saved_max_id if saved_max_id is not None and saved_max_id >= 0 else None
        self._compaction_due = False
        self._closed = False

    @classmethod
    def open(
        cls,
        uri: str,
        model_id: str,
        dim: int,
        *,
        token: str | None = None,
        collection_prefix: str = "facetrace",
        index_type: str = "FLAT",
        build_params: Mapping[str, Any] | None = None,
        search_params: Mapping[str, Any] | None = None,
        compaction_timeout_s: float = 300.0,
    ) -> MilvusIndex:
        """The model's collection at ``uri`` (created, empty, when missing), loaded for search.

        ``uri``: a Milvus Lite ``*.db`` path or a server address (``http://milvus:19530``);
        ``build_params``/``search_params`` default to :data:`DEFAULT_BUILD_PARAMS` and
        :data:`DEFAULT_SEARCH_PARAMS` for the index type.
        """
        lite_path = str(Path(uri).resolve()) if uri.endswith(".db") else None
        if lite_path:
            _LITE_SERVERS.acquire(lite_path)
        try:
            client = MilvusClient(uri=lite_path or uri, token=token or "")
        except BaseException:
            if lite_path:
                _LITE_SERVERS.release(lite_path)
            raise
        name = collection_name(collection_prefix, model_id)
        try:
            if client.has_collection(name):
                meta = _check_existing(client, name, model_id, dim, f"{_redacted(uri)} ({name})")
            else:
                build = DEFAULT_BUILD_PARAMS.get(index_type, {}) if build_params is None else build_params
                _create(client, name, model_id, dim, index_type, build)
                meta = {}
            client.load_collection(name)
            held_type = _held_index_type(client, name, index_type)
            count = _count(client, name)
        except BaseException:
            client.close()
            if lite_path:
                _LITE_SERVERS.release(lite_path)
            raise
        search = DEFAULT_SEARCH_PARAMS.get(held_type, {}) if search_params is None else search_params
        # Vectors reach Milvus without any save; only a count that still matches the saved one
        # vouches for the saved max id (see open_faiss_index for the same rule).
        saved_max_id = meta.get("max_id") if meta.get("count", 0) == count else -1
        return cls(
            client,
            uri,
            name,
            model_id,
            dim,
            index_type=held_type,
            search_params=search,
            saved_max_id=saved_max_id,
            lite_path=lite_path,
            compaction_timeout_s=compaction_timeout_s,
        )

    @property
    def location(self) -> str:
        """Where the vectors are, for messages (credentials left out)."""
        return f"{_redacted(self._uri)} (collection {self.collection})"

    def __len__(self) -> int:
        return _count(self._client, self.collection)

    def add(self, ids: np.ndarray, vectors: np.ndarray, model_id: str) -> None:
        """Store the vectors under the ids; an id already held is overwritten (upsert), so two
        processes reconciling the same shared collection cannot duplicate a face."""
        ids, vectors = checked_batch(self, ids, vectors, model_id)
        for id_chunk, vector_chunk in zip(_chunks(ids), _chunks(vectors), strict=True):
            rows = [{ID_FIELD: int(i), VECTOR_FIELD: v} for i, v in zip(id_chunk, vector_chunk, strict=True)]
            self._client.upsert(self.collection, rows)
        if len(ids):
            self._max_id_hint = max(int(ids.max()), self._max_id_hint or 0)

    def remove(self, ids: np.ndarray) -> int:
        """Delete the ids held among ``ids``; returns how many there were. The rows are gone for
        every search at once; :meth:`save` has them compacted away (see the module docstring)."""
        present = self._present(np.unique(np.asarray(ids, dtype=np.int64)))
        for chunk in _chunks(present):
            self._client.delete(self.collection, ids=chunk.tolist())
        if len(present):
            self._compaction_due = True
        return len(present)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (at most :data:`MAX_TOP_K`) per query, best first. Rows shorter than the
        longest (an approximate index may find fewer) are padded as FAISS pads: id -1, lowest score."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        limit = min(k, MAX_TOP_K)
        if limit <= 0 or not len(queries):
            return np.empty((len(queries), 0), np.float32), np.empty((len(queries), 0), np.int64)
        hits = self._client.search(
            self.collection,
            data=queries,
            limit=limit,
            anns_field=VECTOR_FIELD,
            output_fields=[ID_FIELD],  # without it, every hit carries its vector back
            search_params={"metric_type": "IP", "params": self._search_params_for(limit)},
        )
        return _as_arrays(hits)

    def ids(self) -> np.ndarray:
        """Every id held, ascending."""
        return np.sort(self._iter_ids(""))

    def save(self) -> None:
        """Make everything durable: flush, compact away what was removed, record count and max id."""
        self._client.flush(self.collection)
        if self._compaction_due:
            self._compact()
        count, max_id = len(self), self._max_id()
        meta = {
            "model_id": self.model_id,
            "dim": self.dim,
            "kind": self.kind,
            "count": count,
            "max_id": max_id,
            "saved_at": datetime.now(UTC).isoformat(),
        }
        self._client.alter_collection_properties(
            self.collection, properties={META_PROPERTY: json.dumps(meta)}
        )
        self.saved_max_id = max_id
        self._max_id_hint = max_id

    def size_on_disk(self) -> int:
        """Bytes of the collection's files for Milvus Lite; 0 for a server, which does not say."""
        if self._lite_path is None:
            return 0
        folder = Path(self._lite_path) / "collections" / self.collection
        return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

    def close(self) -> None:
        """Close the connection (and stop Milvus Lite's in-process server once no index uses it)."""
        if self._closed:
            return
        self._closed = True
        self._client.close()
        if self._lite_path:
            _LITE_SERVERS.release(self._lite_path)

    def _search_params_for(self, limit: int) -> dict[str, Any]:
        params = dict(self._search_params)
        if "ef" in params:  # HNSW refuses an ef below the number of results asked for
            params["ef"] = max(int(params["ef"]), limit)
        return params

    def _present(self, ids: np.ndarray) -> np.ndarray:
        """Those of ``ids`` the collection holds."""
        found = [
            row[ID_FIELD]
            for chunk in _chunks(ids)
            for row in self._client.query(
                self.collection, filter=f"{ID_FIELD} in {chunk.tolist()}", output_fields=[ID_FIELD]
            )
        ]
        return np.array(found, dtype=np.int64)

    def _iter_ids(self, expression: str) -> np.ndarray:
        """The ids matching ``expression``, read in batches (a plain query stops at 16,384 rows)."""
        iterator = self._client.query_iterator(
            self.collection, batch_size=BATCH, filter=expression, output_fields=[ID_FIELD]
        )
        found: list[int] = []
        try:
            while batch := iterator.next():
                found.extend(row[ID_FIELD] for row in batch)
        finally:
            iterator.close()
        return np.array(found, dtype=np.int64)

    def _max_id(self) -> int | None:
        """The highest id held. Ids only grow, so only the ids above the highest one known are
        read, unless that one was removed."""
        if self._max_id_hint is not None:
            above = self._iter_ids(f"{ID_FIELD} >= {self._max_id_hint}")
            if len(above):
                return int(above.max())
        ids = self.ids()
        return int(ids[-1]) if len(ids) else None

    def _compact(self) -> None:
        """Have the segments holding deleted rows rewritten without them, and wait for it."""
        job = self._client.compact(self.collection)
        deadline = time.monotonic() + self._compaction_timeout_s
        while self._client.get_compaction_state(job) != "Completed":
            if time.monotonic() > deadline:
                logger.warning("compaction of %s still running; asking again at the next save", self.location)
                return
            time.sleep(1.0)
        self._compaction_due = False


def _create(
    client: MilvusClient, name: str, model_id: str, dim: int, index_type: str, build_params: Mapping[str, Any]
) -> None:
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(ID_FIELD, DataType.INT64, is_primary=True)
    schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=dim)
    index_params = client.prepare_index_params()
    index_params.add_index(
        field_name=VECTOR_FIELD,
        index_type=index_type,
        metric_type="IP",
        params={"params": dict(build_params)},
    )
    client.create_collection(
        name,
        schema=schema,
        index_params=index_params,
        consistency_level="Strong",
        properties={META_PROPERTY: json.dumps({"model_id": model_id, "dim": dim, "kind": MilvusIndex.kind})},
    )


def _check_existing(client: MilvusClient, name: str, model_id: str, dim: int, where: str) -> dict[str, Any]:
    """The collection's Facetrace record, once its model and dimension are known to match."""
    described = client.describe_collection(name)
    meta: dict[str, Any] = json.loads(described.get("properties", {}).get(META_PROPERTY, "{}"))
    vector = next((f for f in described["fields"] if f["name"] == VECTOR_FIELD), None)
    held_dim = int(vector["params"]["dim"]) if vector else None
    if meta.get("model_id", model_id) != model_id or held_dim != dim:
        raise ModelMismatchError(
            f"{where} holds {meta.get('model_id')} ({held_dim}-d) vectors, not {model_id} ({dim}-d)"
        )
    return meta


def _held_index_type(client: MilvusClient, name: str, wanted: str) -> str:
    held = str(client.describe_index(name, VECTOR_FIELD)["index_type"])
    if held != wanted:
        logger.warning(
            "collection %s has a %s index, not %s: drop it to rebuild with %s", name, held, wanted, wanted
        )
    return held


def _count(client: MilvusClient, name: str) -> int:
    # count(*) honours deletions at once; get_collection_stats may not until compaction.
    return int(client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"])


def _as_arrays(hits: Any) -> tuple[np.ndarray, np.ndarray]:
    width = max((len(row) for row in hits), default=0)
    scores = np.full((len(hits), width), np.finfo(np.float32).min, dtype=np.float32)
    ids = np.full((len(hits), width), -1, dtype=np.int64)
    for r, row in enumerate(hits):
        for c, hit in enumerate(row):
            scores[r, c], ids[r, c] = hit["distance"], hit["id"]
    return scores, ids
