"""Exact search: one float32 matrix, a dot product per probe batch. The reference every other index is measured by."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

from faceward.index.base import IndexError_, Labels, Vectors, as_rows


class ExactIndex:
    def __init__(self, dim: int = 128) -> None:
        self.dim = dim
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._labels = np.zeros(0, dtype=np.int64)
        self._size = 0
        self._row_of: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._row_of)

    def _grow(self, extra: int) -> None:
        need = self._size + extra
        if need <= len(self._labels):
            return
        capacity = max(need, 2 * len(self._labels), 1024)
        vectors = np.zeros((capacity, self.dim), dtype=np.float32)
        labels = np.full(capacity, -1, dtype=np.int64)
        vectors[: self._size] = self._vectors[: self._size]
        labels[: self._size] = self._labels[: self._size]
        self._vectors, self._labels = vectors, labels

    def add(self, labels: Labels, vectors: Vectors) -> None:
        if not len(labels):
            return
        vectors = as_rows(vectors, self.dim, "vectors")
        if len(vectors) != len(labels):
            raise IndexError_(f"{len(labels)} labels but {len(vectors)} vectors (each {self.dim}-d)")
        self.remove(int(x) for x in labels)
        self._grow(len(labels))
        for label, vector in zip(labels, vectors):
            row = self._size
            self._vectors[row] = vector
            self._labels[row] = int(label)
            self._row_of[int(label)] = row
            self._size += 1

    def remove(self, labels: Iterable[int]) -> None:
        for label in labels:
            row = self._row_of.pop(int(label), None)
            if row is not None:
                self._labels[row] = -1
                self._vectors[row] = 0.0
        if self._size > 1024 and len(self._row_of) < self._size // 2:
            self._compact()

    def _compact(self) -> None:
        keep = np.nonzero(self._labels[: self._size] >= 0)[0]
        self._vectors = self._vectors[keep].copy()
        self._labels = self._labels[keep].copy()
        self._size = len(keep)
        self._row_of = {int(label): row for row, label in enumerate(self._labels)}

    def items(self) -> tuple[Labels, NDArray[np.float32]]:
        """Every live ``(label, vector)``, for the doctor's check and rebuilds."""
        live = np.nonzero(self._labels[: self._size] >= 0)[0]
        return self._labels[live].astype(np.int64), np.ascontiguousarray(self._vectors[live], dtype=np.float32)

    def search(self, queries: Vectors, k: int) -> tuple[Labels, NDArray[np.float32]]:
        queries = as_rows(queries, self.dim, "queries")
        q = len(queries)
        out_labels = np.full((q, k), -1, dtype=np.int64)
        out_scores = np.full((q, k), -np.inf, dtype=np.float32)
        if self._size == 0 or k <= 0:
            return out_labels, out_scores
        # Score at most ~64 MB of the Q x N matrix at a time: a probe batch never costs Q x N memory.
        block = max(1, (1 << 24) // self._size)
        for start in range(0, q, block):
            stop = min(q, start + block)
            labels, scores = self._search_block(queries[start:stop], k)
            out_labels[start:stop, : labels.shape[1]] = labels
            out_scores[start:stop, : scores.shape[1]] = scores
        return out_labels, out_scores

    def _search_block(self, queries: NDArray[np.float32], k: int) -> tuple[Labels, NDArray[np.float32]]:
        scores = queries @ self._vectors[: self._size].T
        scores[:, self._labels[: self._size] < 0] = -np.inf
        take = min(k, self._size)
        top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        top_scores = np.take_along_axis(top_scores, order, axis=1)
        labels = self._labels[top]
        labels[~np.isfinite(top_scores)] = -1
        return labels, top_scores
