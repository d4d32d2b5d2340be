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

import enum
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime  # noqa: F401  (load order: see below)
from numpy.typing import NDArray

# usearch's native module loaded before onnxruntime's makes onnxruntime's import segfault
# (usearch 2.26.6, onnxruntime 1.32.0); loading onnxruntime first is safe, so do it here.
from usearch.index import Index as _UsearchIndex  # noqa: E402

from faceward.index.base import IndexError_, Labels, Vectors, as_rows
from faceward.index.pq import PqTable

# Queries scored per numpy batch in the re-rank; bounds the gathered candidate block
# (batch x candidates x dim floats) to a few tens of MB.
_RERANK_BATCH = 256
# Fewer rows than this fit no useful centre; the coder then quantises x itself.
_MIN_FIT = 256
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


class Quantisation(str, enum.Enum):
    """Scalar type of the vectors inside the graph (the re-rank is always float32)."""

    PQ4 = "pq4"  # no graph: 32 B/face of 4-bit PQ codes, all scanned (faceward.index.pq); the default
    I8 = "i8"  # HNSW over 128 B/face
    F16 = "f16"  # HNSW over 256 B/face: for when the short list must be shorter


@dataclass(frozen=True)
class AnnParams:
    """Tuning knobs (measured in docs/decisions/005-vector-index.md).

    ``connectivity`` is HNSW's M (fixed at build), ``expansion_add`` its
    efConstruction, ``expansion_search`` its ef (raised to the short-list length
    when that is longer). ``rerank_factor * k`` candidates, at least
    ``min_candidates``, are re-scored exactly.

    Why ef is large: dlib descriptors share a strong common direction (any two
    faces score about 0.83 +- 0.03), so the ten nearest of a million sit in a
    thin shell and the beam must be wide. On a 1M lfw-like gallery, recall@10
    against exact search was 0.86 / 0.94 / 0.977 / 0.991 at ef 256 / 512 / 1024 /
    2048; the default takes the recall (a missed mate is the costly error of a
    face search) over the latency (about 2x that of ef 1024). M=24 would reach
    the same recall at about half the ef but costs 64 more bytes a face.
    """

    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 2048
    quantisation: Quantisation = Quantisation.PQ4
    rerank_factor: int = 10
    shortlist: int = 1024  # pq4: codes re-ranked exactly per query (at least rerank_factor x k)
    min_candidates: int = 100
    exact_below: int = 4096
    threads: int = 0  # 0: all cores

    def __post_init__(self) -> None:
        for name in ("connectivity", "expansion_add", "expansion_search", "rerank_factor", "min_candidates", "shortlist"):
            if int(getattr(self, name)) < 1:
                raise IndexError_(f"AnnIndex {name} must be at least 1, got {getattr(self, name)}")
        if self.exact_below < 0 or self.threads < 0:
            raise IndexError_("AnnIndex exact_below and threads must not be negative")
        object.__setattr__(self, "quantisation", Quantisation(self.quantisation))

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["quantisation"] = self.quantisation.value
        return values


@dataclass(frozen=True)
class GraphCoder:
    """How vectors enter the graph: ``(x - centre) * scale``, rounded to i8 (or cast to f16).

    ``scale`` maps the largest centred component seen at fit time to 1.0, i.e.
    to +-127; later outliers are clipped, which can only cost a candidate, never
    a wrong score (the re-rank is float32).
    """

    centre: NDArray[np.float32]
    scale: float
    quantisation: Quantisation

    @classmethod
    def fit(cls, sample: NDArray[np.float32], quantisation: Quantisation) -> GraphCoder:
        if len(sample) < _MIN_FIT:
            return cls(np.zeros(sample.shape[1], dtype=np.float32), 1.0, quantisation)
        centre = sample.mean(axis=0, dtype=np.float64).astype(np.float32)
        spread = float(np.abs(sample - centre).max())
        return cls(centre, 1.0 / max(spread, 1e-6), quantisation)

    def encode(self, vectors: NDArray[np.float32]) -> NDArray[Any]:
        if self.quantisation is Quantisation.PQ4:
            return np.ascontiguousarray(vectors - self.centre, dtype=np.float32)  # the table quantises itself
        centred = (vectors - self.centre) * np.float32(self.scale)
        if self.quantisation is Quantisation.I8:
            # Handing USearch int8 keeps its own conversion (which renormalises) out of the way.
            return np.clip(np.rint(centred * 127.0), -127, 127).astype(np.int8)
        return centred.astype(np.float16)


@dataclass(frozen=True)
class GraphState:
    """A serialised graph and the coder it was built with: what a snapshot needs to skip the rebuild."""

    graph: bytes | bytearray
    coder: GraphCoder


class _RowStore:
    """Append-only float32 rows, in memory or memory-mapped from a file we own.

    The file holds plaintext descriptors: put it on an encrypted volume or a
    tmpfs. It is created fresh (the index is derived state) and rows of removed
    faces are zeroed in it at once. A mapped store also keeps a float16 copy in
    memory (256 B a face at 128-d): the short list is ordered on it, and only the
    few rows that can still reach the top k are read from the file, so the file's
    pages need not stay resident (the 400 B/face budget at 10M faces).
    """

    def __init__(self, dim: int, path: Path | None) -> None:
        self.dim = dim
        self.path = path
        self.size = 0
        self._rows: NDArray[np.float32] = np.zeros((0, dim), dtype=np.float32)
        self._half: NDArray[np.float16] = np.zeros((0, dim), dtype=np.float16)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
            os.chmod(path, 0o600)

    @property
    def capacity(self) -> int:
        return int(self._rows.shape[0])

    @property
    def mapped(self) -> bool:
        return self.path is not None

    def _reserve(self, need: int) -> None:
        if need <= self.capacity:
            return
        capacity = max(need, self.capacity + self.capacity // 2, 1024)
        if self.path is None:
            rows = np.zeros((capacity, self.dim), dtype=np.float32)
            rows[: self.size] = self._rows[: self.size]
            self._rows = rows
            return
        half = np.zeros((capacity, self.dim), dtype=np.float16)
        half[: self.size] = self._half[: self.size]
        self._half = half
        if isinstance(self._rows, np.memmap):
            self._rows.flush()
        self._rows = np.zeros((0, self.dim), dtype=np.float32)  # drop the old map before growing the file
        os.truncate(self.path, capacity * self.dim * 4)
        self._rows = np.memmap(self.path, dtype=np.float32, mode="r+", shape=(capacity, self.dim))

    def append(self, vectors: NDArray[np.float32]) -> NDArray[np.int64]:
        self._reserve(self.size + len(vectors))
        first = self.size
        self._rows[first : first + len(vectors)] = vectors
        if self.mapped:
            self._half[first : first + len(vectors)] = vectors
        self.size += len(vectors)
        return np.arange(first, self.size, dtype=np.int64)

    def zero(self, rows: NDArray[np.int64]) -> None:
        if len(rows):
            self._rows[rows] = 0.0
            if self.mapped:
                self._half[rows] = 0.0

    def view(self) -> NDArray[np.float32]:
        return self._rows[: self.size]

    def half_view(self) -> NDArray[np.float16] | None:
        """The float16 copy of a mapped store; None in memory (the float32 rows are resident there)."""
        return self._half[: self.size] if self.mapped else None

    def resident_bytes(self) -> int:
        return int(self._half.nbytes) if self.mapped else int(self._rows.nbytes)

    def close(self) -> None:
        self._rows = np.zeros((0, self.dim), dtype=np.float32)
        self._half = np.zeros((0, self.dim), dtype=np.float16)
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class _LabelRows:
    """label -> row in about 16 bytes a face: sorted numpy arrays plus a small dict of recent changes.

    A Python dict costs ~100 bytes an entry, which alone would break the 400
    B/face budget at 10M faces; most labels sit in the sorted arrays and are
    found with a vectorised binary search. The overlay is merged in when it
    grows past an eighth of the base, so merges cost O(1) amortised per insert.
    """

    def __init__(self) -> None:
        self._keys = np.zeros(0, dtype=np.int64)
        self._rows = np.zeros(0, dtype=np.int64)  # -1: removed since the last merge
        self._recent: dict[int, int] = {}
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def _base_positions(self, labels: NDArray[np.int64]) -> NDArray[np.int64]:
        """Position in the base arrays of each label, or -1."""
        if len(self._keys) == 0:
            return np.full(len(labels), -1, dtype=np.int64)
        pos = np.searchsorted(self._keys, labels)
        pos = np.minimum(pos, len(self._keys) - 1)
        found = self._keys[pos] == labels
        return np.where(found, pos, -1).astype(np.int64)

    def get(self, labels: NDArray[np.int64]) -> NDArray[np.int64]:
        pos = self._base_positions(labels)
        rows = np.where(pos >= 0, self._rows[np.maximum(pos, 0)] if len(self._rows) else -1, -1).astype(np.int64)
        if self._recent:
            for i, label in enumerate(labels.tolist()):
                row = self._recent.get(label)
                if row is not None:
                    rows[i] = row
        return rows

    def set(self, labels: NDArray[np.int64], rows: NDArray[np.int64]) -> None:
        """Map labels (absent ones: callers discard first) to rows."""
        for label, row in zip(labels.tolist(), rows.tolist()):
            self._recent[label] = row
        self._live += len(labels)
        if len(self._recent) > max(4096, len(self._keys) // 8):
            self._merge()

    def discard(self, labels: NDArray[np.int64]) -> NDArray[np.int64]:
        """Forget labels; returns the rows they held (absent labels are skipped)."""
        rows = self.get(labels)
        present = rows >= 0
        pos = self._base_positions(labels)
        in_base = pos >= 0
        self._rows[pos[in_base]] = -1
        for label in labels[present].tolist():
            self._recent.pop(label, None)
        gone = np.unique(rows[present])
        self._live -= len(gone)
        return gone

    def _merge(self) -> None:
        keep = self._rows >= 0
        recent_keys = np.fromiter(self._recent.keys(), dtype=np.int64, count=len(self._recent))
        recent_rows = np.fromiter(self._recent.values(), dtype=np.int64, count=len(self._recent))
        keys = np.concatenate([self._keys[keep], recent_keys])
        rows = np.concatenate([self._rows[keep], recent_rows])
        order = np.argsort(keys, kind="stable")
        self._keys, self._rows = keys[order], rows[order]
        self._recent = {}

    def resident_bytes(self) -> int:
        return int(self._keys.nbytes + self._rows.nbytes + 100 * len(self._recent))


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
        self._store = _RowStore(dim, Path(vectors_path) if vectors_path is not None else None)
        self._row_label = np.zeros(0, dtype=np.int64)  # row -> label, -1 once removed
        self._labels = _LabelRows()
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
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        vectors = as_rows(vectors, self.dim, "vectors")
        if len(vectors) != len(labels):
            raise IndexError_(f"expected {len(labels)} x {self.dim} vectors, got {vectors.shape}")
        if len(labels) == 0:
            return
        if len(np.unique(labels)) != len(labels):
            # Keep the last vector of a repeated label, as repeated single adds would.
            _, last = np.unique(labels[::-1], return_index=True)
            keep = np.sort(len(labels) - 1 - last)
            labels, vectors = labels[keep], vectors[keep]
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
        pq_floor = _MIN_FIT if self.params.quantisation is Quantisation.PQ4 else 1  # codebooks need rows to train on
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
        graph.expansion_search = max(p.expansion_search, count)
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

    # -- maintenance and persistence ---------------------------------------

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
        self._store = _RowStore(self.dim, path)
        self._row_label = np.zeros(0, dtype=np.int64)
        self._labels = _LabelRows()
        self._graph, self._coder = None, None
        self.add(labels, vectors)

    def graph_state(self) -> GraphState | None:
        """The serialised graph and its coder; None without a graph, or while the store has dead rows.

        Dead rows are refused because the graph still holds their i8 copies (an
        erased face must not persist in a snapshot) and because the graph's keys
        are rows, which a restore numbers afresh from the live rows.
        """
        if self._graph is None or self._coder is None or self.dead_rows:
            return None
        saved = self._graph.save()
        return GraphState(saved, self._coder) if saved is not None else None

    @classmethod
    def restore(
        cls,
        dim: int,
        labels: Labels,
        vectors: Vectors,
        params: AnnParams,
        state: GraphState | None,
        vectors_path: Path | str | None = None,
    ) -> AnnIndex:
        """An index over ``labels``/``vectors``; reuses ``state`` (rows in the same order) instead of rebuilding."""
        index = cls(dim, params=params, vectors_path=vectors_path)
        labels = np.asarray(labels, dtype=np.int64)
        if state is None or len(labels) == 0:
            index.add(labels, vectors)
            return index
        graph = state.graph
        restored: _UsearchIndex | PqTable | None
        if state.coder.quantisation is Quantisation.PQ4:
            restored = PqTable.restore(graph, index.dim)  # checks the dimension itself
        else:
            restored = _UsearchIndex.restore(
                graph if isinstance(graph, bytearray) else bytearray(graph),
                connectivity=params.connectivity,
                expansion_add=params.expansion_add,
                expansion_search=params.expansion_search,
                enable_key_lookups=False,
            )
            if restored is not None and restored.ndim != index.dim:
                restored = None
            if restored is not None:
                restored.expansion_search = params.expansion_search
                restored.expansion_add = params.expansion_add
        if restored is None or len(restored) != len(labels):
            raise IndexError_("the stored graph does not match the stored vectors")
        rows = index._store.append(as_rows(vectors, index.dim, "vectors"))
        index._grow_row_label(index._store.size)
        index._row_label[rows] = labels
        index._labels.set(labels, rows)
        index._graph, index._coder = restored, state.coder
        return index

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
        self._labels = _LabelRows()


__all__ = ["AnnIndex", "AnnParams", "GraphCoder", "GraphState", "Quantisation"]
