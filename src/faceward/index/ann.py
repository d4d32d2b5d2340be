"""Approximate search: a short list from compressed vectors, then an exact float32 re-rank.

Two ways to make the short list, chosen by ``AnnParams.quantisation``:

- ``pq4`` (the default since decision 009): no graph; every face's 32-byte 4-bit PQ code
  is scanned with FAISS fast-scan kernels (:mod:`faceward.index.pq`), and the best
  ``shortlist`` (1,024) are re-ranked. Recall@10 1.000 at 1M and 0.9997 at 10M synthetic
  distractors, ~2.5 ms per million faces, 32 B a face, seconds to build.
- ``i8`` / ``f16``: a USearch HNSW graph, as below. Kept for galleries whose structure suits
  graphs (clustered, lower intrinsic dimension), where it answers in sub-linear time.

Why this shape (the long form is docs/decisions/005-vector-index.md):

- The graph holds i8 copies of the vectors (128 bytes a face at 128-d). That is
  enough to find the right neighbourhood, not to order it: i8 inner products are
  off by a few 1e-3, as much as the gap between a mate and the best distractor.
- Face descriptors share a strong common direction (dlib's: the mean descriptor
  has norm 0.91), so quantising them raw spends most of the i8 range on what
  every face has in common. We quantise ``(x - centre) * scale`` instead, with
  the centre and scale fitted on the gallery when the graph is first built, and
  search the graph by L2: for unit vectors ``|x - q|^2 = 2 - 2 x.q``, and
  centring moves every point alike, so the L2 order is the inner-product order.
  On lfw-like galleries this halves the beam width needed for a given recall.
- So the graph returns a short list of ``rerank_factor * k`` candidates and we
  score those again against the full-precision float32 vectors. Returned scores
  are therefore exact inner products, comparable with :class:`ExactIndex` and the
  calibrated thresholds in ``scoring/``.
- The float32 rows live either in memory (the default, 512 bytes a face) or in a
  memory-mapped file (``vectors_path``), which keeps resident memory near 300
  bytes a face and lets the page cache hold the hot rows: the 10M-face target.
- Small indexes (below ``exact_below`` live faces) are scanned exactly: it is as
  fast as the graph there and the answer is then exact. The graph is built when
  the index first reaches that size.

Labels map to *rows* of the float32 store, and the graph is keyed by row, so a
search result indexes the store without any lookup. The graph is built without
USearch's own key table (``enable_key_lookups=False``): that table costs ~70
bytes a face, which the 400 B/face budget cannot afford. So removal happens on
our side: a removed label's row is zeroed at once and marked dead in the
row -> label table, and every candidate is checked against that table, so a
removed label is never returned. The dead node stays in the graph as a
waypoint (the short list is widened to make up for it) until
:meth:`AnnIndex.compact` rebuilds; nothing compacts implicitly.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime  # noqa: F401  (load order: see below)
from numpy.typing import NDArray

# usearch's native module loaded before onnxruntime's makes onnxruntime's import segfault
# (usearch 2.26.6, onnxruntime 1.32.0); loading onnxruntime first is safe, so do it here.
from usearch.index import Index as _UsearchIndex  # noqa: E402

from faceward.index.base import IndexError_, Labels, Vectors, add_batch, as_rows
from faceward.index.pq import PqTable
from faceward.index.rows import LabelRows, RowStore
from faceward.index.shortlist import MIN_FIT, AnnParams, GraphCoder, Quantisation

# Queries scored per numpy batch in the re-rank; bounds the gathered candidate block
# (batch x candidates x dim floats) to a few tens of MB.
_RERANK_BATCH = 256
_FIT_SAMPLE = 20_000
_GRAPH_BATCH = 100_000
_SERIAL_SEED = 2_048  # rows inserted single-threaded when a graph is first built
# A mapped store re-reads from its file only this many x k rows per query, chosen on the float16
# copy (float16 inner products are off by ~1e-4; the exact top k sits well inside the best 4k).
_NARROW = 4


def _scores_of(matrix: NDArray[Any], rows: NDArray[np.int64], queries: NDArray[np.float32]) -> NDArray[np.float32]:
    """Q x C inner products of each query with its own candidate ``rows`` of ``matrix`` (float32 or float16)."""
    gathered = matrix[rows.reshape(-1)].astype(np.float32, copy=False).reshape(rows.shape[0], rows.shape[1], -1)
    scores: NDArray[np.float32] = np.einsum("qcd,qd->qc", gathered, queries)
    return scores


class AnnIndex:
    """HNSW (USearch, i8) candidates, re-ranked exactly in float32. Implements ``VectorIndex``.

    Not thread-safe for writes: the service serialises writers per tenant, as for
    :class:`ExactIndex`. Searches may run concurrently with each other.
    """

    def __init__(
        self,
        dim: int = 128,
        *,
        params: AnnParams | None = None,
        vectors_path: Path | str | None = None,
        **knobs: Any,
    ) -> None:
        if params is not None and knobs:
            raise IndexError_("give AnnIndex either params or keyword knobs, not both")
        try:
            self.params = params or AnnParams(**knobs)
        except TypeError as exc:  # an unknown knob: fail loudly rather than ignore it
            raise IndexError_(f"unknown AnnIndex option: {exc}") from None
        if dim < 1:
            raise IndexError_(f"dimension must be positive, got {dim}")
        self.dim = dim
        self._store = RowStore(dim, Path(vectors_path) if vectors_path is not None else None)
        self._row_label = np.zeros(0, dtype=np.int64)  # row -> label, -1 once removed
        self._labels = LabelRows()
        self._graph: _UsearchIndex | PqTable | None = None  # built once the index reaches exact_below faces
        self._coder: GraphCoder | None = None

    def _new_graph(self) -> _UsearchIndex:
        p = self.params
        return _UsearchIndex(
            ndim=self.dim,
            metric="l2sq",  # on centred vectors: the same order as the inner product (module docstring)
            dtype=p.quantisation.value,
            connectivity=p.connectivity,
            expansion_add=p.expansion_add,
            expansion_search=p.expansion_search,
            enable_key_lookups=False,
        )

    # -- VectorIndex -------------------------------------------------------

    def __len__(self) -> int:
        return len(self._labels)

    def add(self, labels: Labels, vectors: Vectors) -> None:
        labels, vectors = add_batch(labels, vectors, self.dim)
        if len(labels) == 0:
            return
        self.remove(labels)
        rows = self._store.append(vectors)
        self._grow_row_label(self._store.size)
        self._row_label[rows] = labels
        self._labels.set(labels, rows)
        graph, coder = self._graph, self._coder
        if graph is not None and coder is not None:
            if isinstance(graph, PqTable):
                graph.add(rows, coder.encode(vectors))
            else:
                graph.add(rows.astype(np.uint64), coder.encode(vectors), threads=self.params.threads)
        elif len(self) >= self._build_at:
            self._build_graph()

    @property
    def _build_at(self) -> int:
        """Live faces at which the graph (or pq4 table) is built; below it the exact scan answers."""
        pq_floor = MIN_FIT if self.params.quantisation is Quantisation.PQ4 else 1  # codebooks need rows to train on
        return max(self.params.exact_below, 1, pq_floor)

    def _build_graph(self) -> None:
        """Fit the coder on (a sample of) the live rows, then insert every live row."""
        live = np.nonzero(self._row_label[: self._store.size] >= 0)[0]
        rng = np.random.default_rng(0)
        sample = live if len(live) <= _FIT_SAMPLE else np.sort(rng.choice(live, _FIT_SAMPLE, replace=False))
        self._coder = GraphCoder.fit(np.asarray(self._store.view()[sample]), self.params.quantisation)
        if self.params.quantisation is Quantisation.PQ4:
            # Every row gets a code (a dead row's zeroed vector too) so that table positions are rows.
            table = PqTable.train(self.dim, self._coder.encode(np.asarray(self._store.view()[sample])))
            for start in range(0, self._store.size, _GRAPH_BATCH):
                rows = np.arange(start, min(start + _GRAPH_BATCH, self._store.size), dtype=np.int64)
                table.add(rows, self._coder.encode(np.asarray(self._store.view()[rows])))
            self._graph = table
            return
        self._graph = self._new_graph()
        # The first rows go in one thread: inserted concurrently into an almost empty graph they
        # can link poorly (measured: 1 build in 40 of 400 rows lost top-10 order), and every later
        # insert routes through them.
        seed = live[:_SERIAL_SEED]
        self._graph.add(seed.astype(np.uint64), self._coder.encode(np.asarray(self._store.view()[seed])), threads=1)
        for start in range(len(seed), len(live), _GRAPH_BATCH):
            rows = live[start : start + _GRAPH_BATCH]
            encoded = self._coder.encode(np.asarray(self._store.view()[rows]))
            self._graph.add(rows.astype(np.uint64), encoded, threads=self.params.threads)

    def remove(self, labels: Iterable[int]) -> None:
        labels = np.fromiter((int(x) for x in labels), dtype=np.int64)
        if len(labels) == 0:
            return
        rows = self._labels.discard(labels)
        if len(rows) == 0:
            return
        self._row_label[rows] = -1
        self._store.zero(rows)

    def search(self, queries: Vectors, k: int) -> tuple[Labels, NDArray[np.float32]]:
        queries = as_rows(queries, self.dim, "queries")
        out_labels = np.full((len(queries), max(k, 0)), -1, dtype=np.int64)
        out_scores = np.full((len(queries), max(k, 0)), -np.inf, dtype=np.float32)
        if k <= 0 or len(queries) == 0 or len(self) == 0:
            return out_labels, out_scores
        if self._graph is None or len(self) < self.params.exact_below:
            # Every live row is a candidate of every query: one matrix product.
            shared = np.nonzero(self._row_label[: self._store.size] >= 0)[0]
            for start in range(0, len(queries), _RERANK_BATCH):
                stop = start + _RERANK_BATCH
                labels, scores = self._rerank(queries[start:stop], shared, k)
                out_labels[start:stop, : labels.shape[1]] = labels
                out_scores[start:stop, : scores.shape[1]] = scores
            return out_labels, out_scores
        candidates = self._narrow(queries, self._candidates(queries, k), k)
        for start in range(0, len(queries), _RERANK_BATCH):
            stop = start + _RERANK_BATCH
            labels, scores = self._rerank(queries[start:stop], candidates[start:stop], k)
            out_labels[start:stop, : labels.shape[1]] = labels
            out_scores[start:stop, : scores.shape[1]] = scores
        return out_labels, out_scores

    # -- internals ---------------------------------------------------------

    def _grow_row_label(self, need: int) -> None:
        if need <= len(self._row_label):
            return
        grown = np.full(max(need, self._store.capacity), -1, dtype=np.int64)
        grown[: len(self._row_label)] = self._row_label
        self._row_label = grown

    def _candidates(self, queries: NDArray[np.float32], k: int) -> NDArray[np.int64]:
        """Q x C candidate rows from the graph, -1 where it had fewer."""
        graph, coder = self._graph, self._coder
        if graph is None or coder is None:
            raise IndexError_("internal: the graph is searched before it was built")
        p = self.params
        wanted = max(k * p.rerank_factor, p.min_candidates, k)
        # Dead rows still come back from the graph and are dropped in the re-rank:
        # ask for enough more that about ``wanted`` live ones remain.
        live_share = max(len(self) / max(self._store.size, 1), 0.1)
        if isinstance(graph, PqTable):
            count = int(np.ceil(max(wanted, p.shortlist) / live_share))
            return graph.search(coder.encode(queries), min(count, len(graph)), p.threads)
        count = int(np.ceil(wanted / live_share))
        # HNSW cannot return more than ef results; keep ef at least the short list.
        graph.expansion_search = max(p.expansion_search, count)  # type: ignore[misc]
        found = graph.search(coder.encode(queries), count, threads=p.threads)
        keys = np.full((len(queries), count), -1, dtype=np.int64)
        if hasattr(found, "counts"):  # BatchMatches: Q x count keys, valid up to counts[q]
            width = min(count, np.asarray(found.keys).shape[1])
            keys[:, :width] = np.asarray(found.keys)[:, :width]
            counts = np.asarray(found.counts).reshape(len(queries))
            keys[np.arange(count)[None, :] >= counts[:, None]] = -1
        else:  # one query comes back as Matches, holding only the keys found
            hits = np.asarray(found.keys, dtype=np.int64)[:count]
            keys[0, : len(hits)] = hits
        return keys

    def _narrow(self, queries: NDArray[np.float32], rows: NDArray[np.int64], k: int) -> NDArray[np.int64]:
        """A mapped store's short list cut to the ``_NARROW x k`` best on the float16 copy (Q x C -> Q x C')."""
        half = self._store.half_view()
        keep = _NARROW * k
        if half is None or rows.shape[1] <= keep:
            return rows
        valid = rows >= 0
        safe = np.where(valid, rows, 0)
        scores = np.empty(rows.shape, dtype=np.float32)
        for start in range(0, len(queries), _RERANK_BATCH):
            stop = start + _RERANK_BATCH
            scores[start:stop] = _scores_of(half, safe[start:stop], queries[start:stop])
        scores[~valid] = -np.inf
        best = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        return np.take_along_axis(rows, best, axis=1)

    def _rerank(
        self, queries: NDArray[np.float32], rows: NDArray[np.int64], k: int
    ) -> tuple[Labels, NDArray[np.float32]]:
        """Exact float32 scores of candidate rows (Q x C, or C shared by all queries); the best ``k`` per query."""
        store = self._store.view()
        if rows.ndim == 1:
            scores = queries @ store[rows].T
            labels = np.broadcast_to(self._row_label[rows], scores.shape)
            valid = labels >= 0
        else:
            valid = rows >= 0
            safe = np.where(valid, rows, 0)
            labels = self._row_label[safe]
            valid &= labels >= 0  # a dead row is never returned, whatever the graph says
            scores = _scores_of(store, safe, queries)
        scores = np.where(valid, scores, -np.inf).astype(np.float32)
        width = scores.shape[1]
        take = min(k, width)
        if take == 0:
            return np.zeros((len(queries), 0), np.int64), np.zeros((len(queries), 0), np.float32)
        if take < width:
            top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
        else:
            top = np.broadcast_to(np.arange(width), scores.shape).copy()
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        top_scores = np.take_along_axis(top_scores, order, axis=1)
        top_labels = np.take_along_axis(labels, top, axis=1).astype(np.int64)
        top_labels[~np.isfinite(top_scores)] = -1
        return top_labels, top_scores

    # -- maintenance -------------------------------------------------------

    @property
    def dead_rows(self) -> int:
        """Rows of removed or replaced faces still occupying the store and the graph."""
        return self._store.size - len(self)

    def items(self) -> tuple[Labels, Vectors]:
        """Every live ``(label, vector)``, in row order (a copy)."""
        rows = np.nonzero(self._row_label[: self._store.size] >= 0)[0]
        return self._row_label[rows].copy(), np.array(self._store.view()[rows], dtype=np.float32)

    def compact(self) -> None:
        """Rebuild store and graph from the live rows: reclaims dead rows and drops their i8 copies from the graph."""
        labels, vectors = self.items()
        path = self._store.path
        self._store.close()
        self._store = RowStore(self.dim, path)
        self._row_label = np.zeros(0, dtype=np.int64)
        self._labels = LabelRows()
        self._graph, self._coder = None, None
        self.add(labels, vectors)

    def memory_bytes(self) -> dict[str, int]:
        """Resident bytes by part; ``mapped`` is the float32 file, held by the page cache, not the heap."""
        resident = {
            "graph": int(self._graph.memory_usage) if self._graph is not None else 0,
            "vectors": self._store.resident_bytes(),
            "row_labels": int(self._row_label.nbytes),
            "label_rows": self._labels.resident_bytes(),
        }
        resident["mapped"] = self._store.capacity * self.dim * 4 if self._store.mapped else 0
        return resident

    def close(self) -> None:
        """Release memory and delete the vectors file, if any."""
        self._store.close()
        self._graph, self._coder = None, None
        self._row_label = np.zeros(0, dtype=np.int64)
        self._labels = LabelRows()


__all__ = ["AnnIndex", "AnnParams", "GraphCoder", "Quantisation"]
