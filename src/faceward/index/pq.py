"""A flat table of 4-bit product-quantised codes, scanned whole with FAISS's fast-scan kernels.

Why a scan and not a graph (measured in docs/decisions/009-pq-fast-scan.md): face
descriptors against a gallery of "anyone" fill 128 dimensions almost uniformly, so
an HNSW graph needs a beam of thousands of nodes to keep recall@10 at 0.99 (13 ms
at 1M faces), and an inverted file must visit a quarter of its lists. Scanning
every code is predictable instead: 64 sub-quantisers of 2 dimensions and 16
centroids (32 bytes a face) compared through SIMD lookup tables take ~2 ms per
million faces on one core, and their ranking is close enough that the exact
float32 re-rank of the best ~1,000 finds the true top 10.

Positions in the table are the index's rows: row ``r`` is the ``r``-th code. Rows
never added (gaps) get the code of the zero vector; the caller filters dead rows.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray

from faceward.index.base import IndexError_

SUBQUANTIZERS = 64  # 2 dimensions each at 128-d
BITS = 4  # the fast-scan kernels' code width
SHARD_ROWS = 1 << 20  # codes per shard: one query scans the shards of a big table in parallel


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a dependency
        raise IndexError_("the pq4 index needs faiss-cpu (pip install faiss-cpu)") from exc
    return faiss


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(workers: int) -> ThreadPoolExecutor:
    """One long-lived pool per width: starting threads per query cost more than a small shard scan."""
    pool = _POOLS.get(workers)
    if pool is None:
        pool = _POOLS.setdefault(workers, ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pq4-scan"))
    return pool


class PqTable:
    """Codes of centred vectors; :meth:`search` gives the rows whose codes are nearest (L2).

    Rows live in shards of :data:`SHARD_ROWS` codes sharing one codebook, so that one query
    scans the shards of a large table on every core at once (FAISS releases the GIL).
    """

    def __init__(self, shards: list[Any]) -> None:
        self._shards = shards

    @classmethod
    def train(cls, dim: int, sample: NDArray[np.float32]) -> PqTable:
        """A table with a codebook trained on ``sample`` (the caller's sample of the gallery) and no codes."""
        faiss = _faiss()
        if dim % 2:
            raise IndexError_(f"the pq4 index needs an even dimension, got {dim}")
        index = faiss.IndexPQFastScan(dim, min(SUBQUANTIZERS, dim // 2), BITS, faiss.METRIC_L2)
        # One thread: k-means on a sample this size gains nothing from more, and OpenMP's spinning threads
        # turned a 0.4 s training into 80 s on a loaded host (20k rows: 0.35 s in 1 thread, 0.9-1.1 s in 2
        # at load 2). Searches set their own thread count.
        faiss.omp_set_num_threads(1)
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        return cls([index])

    def __len__(self) -> int:
        return sum(int(shard.ntotal) for shard in self._shards)

    def add(self, rows: NDArray[np.int64], centred: NDArray[np.float32]) -> None:
        """Codes for ``rows`` (ascending, none below the current length); gaps get the zero vector's code."""
        if len(rows) == 0:
            return
        start, stop = len(self), int(rows[-1]) + 1
        if int(rows[0]) < start:
            raise IndexError_("internal: pq4 rows must be appended in order")
        block = np.zeros((stop - start, centred.shape[1]), dtype=np.float32)
        block[rows - start] = centred
        while len(block):
            last = self._shards[-1]
            if last.ntotal >= SHARD_ROWS:
                last = _faiss().clone_index(self._shards[0])
                last.reset()  # the trained codebook, no codes
                self._shards.append(last)
            room = SHARD_ROWS - int(last.ntotal)
            last.add(block[:room])
            block = block[room:]

    def search(self, centred: NDArray[np.float32], count: int, threads: int) -> NDArray[np.int64]:
        """Q x ``count`` rows, nearest code first; -1 where the table has fewer."""
        faiss = _faiss()
        queries = np.ascontiguousarray(centred, dtype=np.float32)
        workers = threads if threads > 0 else (os.cpu_count() or 1)
        if len(self._shards) == 1:
            faiss.omp_set_num_threads(workers)
            return np.asarray(self._shards[0].search(queries, count)[1], dtype=np.int64)
        faiss.omp_set_num_threads(1)  # the parallelism is across shards
        # Each shard's share of the global short list, with room to spare: rows are spread over shards
        # by arrival, so a shard holding 2.5x its share of the best codes is vanishingly rare.
        each = min(count, max(64, -(-5 * count // (2 * len(self._shards)))))

        def one(shard_at: tuple[int, Any]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
            offset, shard = shard_at
            distances, found = shard.search(queries, each)
            return distances, np.where(found >= 0, found + offset, -1)

        offsets = np.cumsum([0] + [int(s.ntotal) for s in self._shards[:-1]])
        parts = list(_pool(workers).map(one, zip(offsets.tolist(), self._shards)))
        distances = np.concatenate([d for d, _ in parts], axis=1)
        found = np.concatenate([f for _, f in parts], axis=1)
        distances = np.where(found >= 0, distances, np.inf)
        best = np.argsort(distances, axis=1, kind="stable")[:, :count]
        return np.take_along_axis(found, best, axis=1)  # shards x each >= count columns, -1 where empty

    @property
    def memory_usage(self) -> int:
        """Bytes of codes (fast-scan packs them in blocks of 32 rows) plus the codebooks."""
        total = 0
        for shard in self._shards:
            total += -(-int(shard.ntotal) // 32) * 32 * int(shard.code_size) + int(shard.pq.centroids.size()) * 4
        return total


__all__ = ["BITS", "SHARD_ROWS", "SUBQUANTIZERS", "PqTable"]
