"""A ``VectorIndex`` that only ever hands its backend protected templates.

:class:`ProtectedIndex` rotates every vector it adds and every query it
searches by the tenant's secret orthonormal matrix ``Q``
(:func:`faceward.security.templates.template_transform`) before the inner
index sees it. Rotation preserves inner products, so labels and scores are
those of the unprotected index; the inner index (a Milvus collection, its
disks, its object store, its message queue) holds only ``Q @ template``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from faceward.index.base import IndexError_, Labels, VectorIndex, Vectors, as_rows


class ProtectedIndex:
    """``inner`` holding ``vectors @ Q.T``; searches with ``queries @ Q.T``. ``Q`` must be orthonormal."""

    def __init__(self, inner: VectorIndex, transform: NDArray[np.float32]) -> None:
        q = np.ascontiguousarray(transform, dtype=np.float32)
        if q.shape != (inner.dim, inner.dim):
            raise IndexError_(f"the transform must be {inner.dim} x {inner.dim}, got {q.shape}")
        self.inner = inner
        self.dim = inner.dim
        self._forward = np.ascontiguousarray(q.T)  # rows @ Q.T == (Q @ rows.T).T

    def protect(self, vectors: Vectors) -> NDArray[np.float32]:
        """``vectors`` as the inner index stores them."""
        return np.ascontiguousarray(as_rows(vectors, self.dim, "vectors") @ self._forward)

    def add(self, labels: Labels, vectors: Vectors) -> None:
        self.inner.add(labels, self.protect(vectors))

    def remove(self, labels: Iterable[int]) -> None:
        self.inner.remove(labels)

    def search(self, queries: Vectors, k: int) -> tuple[Labels, NDArray[np.float32]]:
        return self.inner.search(self.protect(as_rows(queries, self.dim, "queries")), k)

    def __len__(self) -> int:
        return len(self.inner)

    def labels(self) -> Labels:
        """Every label the inner index holds (a persistent engine's, for reconciling it with the store)."""
        return np.asarray(self.inner.labels(), dtype=np.int64)  # type: ignore[attr-defined]

    def items(self) -> tuple[Labels, NDArray[np.float32]]:
        """``(labels, vectors)`` with the vectors turned back into templates (``Q.T @ stored``)."""
        labels, stored = self.inner.items()  # type: ignore[attr-defined]
        stored = np.asarray(stored, dtype=np.float32).reshape(-1, self.dim)
        return np.asarray(labels, dtype=np.int64), np.ascontiguousarray(stored @ self._forward.T)

    def __getattr__(self, name: str) -> Any:
        # drop(), close(), collection, ...: the backend's own lifecycle, unchanged.
        return getattr(self.inner, name)


__all__ = ["ProtectedIndex"]
