"""Milvus behind the ``VectorIndex`` contract: one collection per tenant.

Why a collection per tenant rather than one shared collection with a
partition key: isolation then holds by construction. No query needs a tenant
filter, so no forgotten filter can leak another tenant's faces, and erasing a
tenant is one ``drop_collection``. Milvus handles thousands of collections; a
deployment with more tenants than that should shard tenants over clusters
rather than share an unfiltered space (decision 005).

The collection name is derived from a hash of the tenant id (names allow only
``[A-Za-z0-9_]``), and the tenant id itself is recorded in the collection's
properties and checked on open, so a hash collision or a hand-made collection
of the same name is refused instead of silently shared.

``uri`` is a milvus-lite file path (tests, single node) or ``http://host:19530``.
pymilvus is imported lazily: it is an optional dependency.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from faceward.index.base import IndexError_, Labels, Vectors, add_batch, as_rows

# The server's index when none is configured: SCANN (4-bit PQ fast-scan lists, like faceward's own
# pq4) over few lists, all probed, the raw vectors kept so the top reorder_k of each segment are
# re-scored exactly. On a 20k isotropic smoke gallery nlist 64 / nprobe 16 gave recall@10 0.52,
# 16 / 16 gave 1.0. reorder_k: lfw-dev descriptors and their fitted distractors are concentrated
# (every face scores 0.83 +- 0.03 against every other), so Milvus's 4-bit codes rank the true top 10
# far down: at 100k (seed 1, one segment) reorder_k 1024 / 2048 / 4096 / 8192 gave recall@10
# 0.975 / 0.994 / 0.999 / 0.9998 at p50 2.4 / 2.7 / 3.6 / 4.4 ms (decision 028). Milvus's AUTOINDEX is
# an HNSW that lost badly at 1M (issue #14). milvus-lite has no SCANN, so a file URI keeps AUTOINDEX.
SERVER_INDEX_TYPE = "SCANN"
SERVER_INDEX_PARAMS: dict[str, Any] = {"nlist": 16}  # raw rows are kept by default (2.3 refuses the flag as a string)
SERVER_SEARCH_PARAMS: dict[str, Any] = {"nprobe": 16, "reorder_k": 8192}  # every list: a full fast-scan, as pq4
# Milvus refuses a top-k above this (its ``quotaAndLimits.limits.topK``).
MAX_TOP_K = 16384
# Rows per insert call: 128-d float32 rows stay well under gRPC's 64 MB message limit.
_INSERT_BATCH = 8192
# Milvus indexes no segment smaller than this (its dataCoord.segment.minSegmentNumRowsToEnableIndex).
_MIN_INDEXED_ROWS = 1024
_PK = "seq"
_VECTOR = "vec"
_TENANT_PROPERTY = "faceward.tenant"


class MilvusError(IndexError_):
    """Milvus refused or failed an operation (unreachable server, bad collection, ...).

    A 503: the engine is a service of its own, and a client may retry. The details (collection, the
    server's words) go to the server log only; the client reads :attr:`public_message`."""

    code = "index_unavailable"
    status = 503
    public_message = "the vector engine is unavailable; retry shortly"


def collection_name(tenant_id: str, prefix: str = "faceward", generation: int = 0) -> str:
    """The tenant's collection: a prefix and 96 bits of SHA-256 of the tenant id; from the second
    template-transform generation on (decision 016), ``_g<generation>``: a renewal fills a new collection."""
    if not tenant_id:
        raise IndexError_("a Milvus index needs a tenant id")
    if generation < 0:
        raise IndexError_("a template-transform generation is >= 0")
    suffix = f"_g{generation}" if generation else ""
    return f"{prefix}_{hashlib.sha256(tenant_id.encode()).hexdigest()[:24]}{suffix}"


class MilvusIndex:
    """A tenant's faces in its own Milvus collection; scores are inner products (metric IP).

    ``index_type`` and ``index_params`` pick the server-side index and
    ``search_params`` its query knobs. Unset, a server (``http://...``) gets
    :data:`SERVER_INDEX_TYPE` with :data:`SERVER_INDEX_PARAMS` and
    :data:`SERVER_SEARCH_PARAMS`, a milvus-lite file ``AUTOINDEX``. A
    ``reorder_k`` below ``k`` is raised to ``k`` per search (Milvus refuses it).
    Collections use Strong consistency so a removed label is gone from the very
    next search, as the contract demands.
    """

    def __init__(
        self,
        tenant_id: str,
        *,
        uri: str,
        dim: int = 128,
        token: str | None = None,
        prefix: str = "faceward",
        index_type: str | None = None,
        index_params: dict[str, Any] | None = None,
        search_params: dict[str, Any] | None = None,
        client: Any | None = None,
        generation: int = 0,
    ) -> None:
        if dim < 1:
            raise IndexError_(f"dimension must be positive, got {dim}")
        self.dim = dim
        self.tenant_id = tenant_id
        self.collection = collection_name(tenant_id, prefix, generation)
        server = uri.startswith(("http://", "https://", "tcp://", "grpc://"))
        if index_type is None:
            index_type = SERVER_INDEX_TYPE if server else "AUTOINDEX"
            if server and index_params is None:
                index_params = SERVER_INDEX_PARAMS
            if server and search_params is None:
                search_params = SERVER_SEARCH_PARAMS
        self.index_type = index_type
        # Session: a search sees every write of this client (its erasures included) without waiting for
        # the server's next time tick as Strong does. SearchIndexes applies the store's erasures through
        # this same client before each search, which is what the "removed is gone" contract needs.
        self.search_consistency = "Session"
        self.search_params: dict[str, Any] = dict(search_params or {})
        """The index's query knobs (SCANN: ``nprobe``, ``reorder_k``), sent with every search; may be changed between searches."""
        self._owns_client = client is None
        try:
            if client is None:
                from pymilvus import MilvusClient

                client = MilvusClient(uri=uri, token=token or "")
            self._client = client
            self._open(index_type, index_params or {})
        except ImportError as exc:
            raise MilvusError("the milvus backend needs pymilvus: pip install 'pymilvus[milvus-lite]'") from exc
        except IndexError_:
            raise
        except Exception as exc:  # pymilvus raises MilvusException and grpc errors alike
            raise MilvusError(f"cannot open Milvus collection for tenant at {uri}: {exc}") from exc

    def _open(self, index_type: str, index_params: dict[str, Any]) -> None:
        from pymilvus import DataType, MilvusClient

        if self._client.has_collection(self.collection):
            self._check_existing()
            self._client.load_collection(self.collection)
            return
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(_PK, DataType.INT64, is_primary=True)
        schema.add_field(_VECTOR, DataType.FLOAT_VECTOR, dim=self.dim)
        params = self._client.prepare_index_params()
        params.add_index(_VECTOR, index_type=index_type, metric_type="IP", params=index_params)
        self._client.create_collection(
            self.collection,
            schema=schema,
            index_params=params,
            consistency_level="Strong",
            properties={_TENANT_PROPERTY: self.tenant_id},
        )

    def _check_existing(self) -> None:
        info = self._client.describe_collection(self.collection)
        owner = (info.get("properties") or {}).get(_TENANT_PROPERTY)
        # Some milvus-lite releases drop collection properties; then the 96-bit name is the only check.
        if owner is not None and owner != self.tenant_id:
            raise MilvusError(f"collection {self.collection} belongs to another tenant")
        for field in info.get("fields", []):
            if field.get("name") == _VECTOR:
                dim = int(field.get("params", {}).get("dim", self.dim))
                if dim != self.dim:
                    raise IndexError_(f"collection {self.collection} holds {dim}-d vectors, not {self.dim}-d")

    # -- VectorIndex -------------------------------------------------------

    def __len__(self) -> int:
        rows = self._call("count", self._client.query, self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def add(self, labels: Labels, vectors: Vectors) -> None:
        labels, vectors = add_batch(labels, vectors, self.dim)
        if len(labels) == 0:
            return
        for start in range(0, len(labels), _INSERT_BATCH):
            rows = [
                {_PK: int(label), _VECTOR: vector}
                for label, vector in zip(labels[start : start + _INSERT_BATCH], vectors[start : start + _INSERT_BATCH])
            ]
            self._call("upsert", self._client.upsert, self.collection, rows)

    def remove(self, labels: Iterable[int]) -> None:
        ids = [int(x) for x in labels]
        for start in range(0, len(ids), _INSERT_BATCH):
            self._call("delete", self._client.delete, self.collection, ids=ids[start : start + _INSERT_BATCH])

    def search(self, queries: Vectors, k: int) -> tuple[Labels, NDArray[np.float32]]:
        queries = as_rows(queries, self.dim, "queries")
        if k > MAX_TOP_K:
            raise IndexError_(f"Milvus returns at most {MAX_TOP_K} neighbours, asked for {k}")
        out_labels = np.full((len(queries), max(k, 0)), -1, dtype=np.int64)
        out_scores = np.full((len(queries), max(k, 0)), -np.inf, dtype=np.float32)
        if k <= 0 or len(queries) == 0:
            return out_labels, out_scores
        knobs = dict(self.search_params)
        if knobs.get("reorder_k", k) < k:
            knobs["reorder_k"] = k
        params = {"metric_type": "IP", "params": knobs}
        results = self._call(
            "search", self._client.search, self.collection, data=list(queries), limit=k,
            anns_field=_VECTOR, output_fields=[_PK], search_params=params, consistency_level=self.search_consistency,
        )
        for row, hits in enumerate(results):
            for col, hit in enumerate(hits):
                out_labels[row, col] = int(hit[_PK] if _PK in hit else hit["id"])
                out_scores[row, col] = float(hit["distance"])
        return out_labels, out_scores

    # -- export (doctor, reconciliation) -----------------------------------

    persistent = True
    """The engine keeps its vectors across processes: a new handle starts with what an old one left."""

    def labels(self) -> Labels:
        """Every label the collection holds."""
        return self._export(with_vectors=False)[0]

    def items(self) -> tuple[Labels, NDArray[np.float32]]:
        """``(labels, vectors)`` of every row, as stored (for ``faceward doctor``)."""
        labels, vectors = self._export(with_vectors=True)
        assert vectors is not None
        return labels, vectors

    def _export(self, *, with_vectors: bool) -> tuple[Labels, NDArray[np.float32] | None]:
        fields = [_PK, _VECTOR] if with_vectors else [_PK]
        labels: list[int] = []
        vectors: list[Any] = []
        iterator = self._call("query_iterator", self._client.query_iterator, self.collection,
                              batch_size=_INSERT_BATCH, filter=f"{_PK} >= -9223372036854775807", output_fields=fields)
        try:
            while rows := self._call("query_iterator", iterator.next):
                labels.extend(int(row[_PK]) for row in rows)
                if with_vectors:
                    vectors.extend(row[_VECTOR] for row in rows)
        finally:
            iterator.close()
        out_labels = np.asarray(labels, dtype=np.int64)
        if not with_vectors:
            return out_labels, None
        return out_labels, np.asarray(vectors, dtype=np.float32).reshape(len(labels), self.dim)

    def flush(self) -> None:
        """Seal what was inserted into the server's storage files (tests look at what lands on disk)."""
        self._call("flush", self._client.flush, self.collection)

    def segments(self) -> list[tuple[int, bool]]:
        """``(rows, indexed)`` of each sealed segment the query node serves (growing ones are not listed); unindexed ones are scanned exactly."""
        loaded = self._call("list_loaded_segments", self._client.list_loaded_segments, self.collection)
        return [(int(s.num_rows), bool(s.index_name)) for s in loaded]

    def wait_indexed(self, timeout_s: float = 3600.0, poll_s: float = 1.0) -> float:
        """Seal what was inserted, then wait until the query node searches every segment through the index.

        Two steps, both needed: the index nodes build the index over every sealed row
        (``describe_index``), then the query node swaps each segment it serves for its indexed
        copy (the handoff, seconds later). Before that a search is still right (unindexed rows
        are scanned exactly, :data:`~faceward.index.milvus_server.REQUIRED_CONFIG`) but slower,
        so a benchmark or a bulk load waits here. Segments below Milvus's
        ``minSegmentNumRowsToEnableIndex`` (1,024 rows) are never indexed and not waited for.
        Returns the seconds waited; raises :class:`MilvusError` past ``timeout_s``.
        """
        started = time.monotonic()
        self.flush()
        name = self._call("list_indexes", self._client.list_indexes, self.collection)[0]
        live = len(self)
        while True:
            info = self._call("describe_index", self._client.describe_index, self.collection, index_name=name)
            built = int(info.get("pending_index_rows", 0)) == 0 and int(info.get("indexed_rows", 0)) >= int(
                info.get("total_rows", 0))
            segments = self.segments()
            # Flushed rows are served from growing segments (not listed) until the query node loads the
            # sealed ones: every live row must be in a loaded sealed segment, and each of those indexed.
            handed_off = sum(rows for rows, _ in segments) >= live
            # A FLAT collection's sealed segments are served as raw rows: they never report an index.
            served = self.index_type.upper() == "FLAT" or all(indexed or rows < _MIN_INDEXED_ROWS for rows, indexed in segments)
            if built and handed_off and served:
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                unindexed = sum(rows for rows, indexed in segments if not indexed)
                raise MilvusError(f"collection {self.collection}: index not served after {timeout_s:.0f} s "
                                  f"({info.get('indexed_rows')}/{info.get('total_rows')} rows built, "
                                  f"{unindexed} loaded rows without it)")
            time.sleep(poll_s)

    # -- lifecycle ---------------------------------------------------------

    def drop(self) -> None:
        """Delete the tenant's collection and every vector in it (tenant erasure)."""
        self._call("drop", self._client.drop_collection, self.collection)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _call(self, what: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as exc:  # MilvusException, grpc.RpcError: one domain error for callers
            raise MilvusError(f"Milvus {what} failed for collection {self.collection}: {exc}") from exc


__all__ = ["MAX_TOP_K", "SERVER_INDEX_PARAMS", "SERVER_INDEX_TYPE", "SERVER_SEARCH_PARAMS", "MilvusError", "MilvusIndex", "collection_name"]
