"""The vector index contract every backend honours (exact, ANN, Milvus).

Labels are the store's face ``seq`` numbers (unique int64). Vectors are unit
float32; scores are inner products (cosine similarity), higher is closer.
The index is derived state: the store is the truth, and an index can always
be rebuilt from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from faceward.errors import FacewardError

Labels = NDArray[np.int64]
Vectors = NDArray[np.float32]


class IndexError_(FacewardError):
    """Raised for misuse (wrong dimension) or a backend failure; named to avoid shadowing the builtin."""

    code = "index_error"
    status = 500


def as_rows(vectors: object, dim: int, what: str) -> NDArray[np.float32]:
    """``vectors`` as a contiguous ``N x dim`` float32 array (one vector or none allowed); else :class:`IndexError_`."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1 and array.size == dim:
        array = array.reshape(1, dim)
    if array.ndim == 1 and array.size == 0:
        array = array.reshape(0, dim)
    if array.ndim != 2 or array.shape[1] != dim:
        raise IndexError_(f"{what} must be N x {dim} float32, got shape {array.shape}")
    return np.ascontiguousarray(array)


def add_batch(labels: object, vectors: object, dim: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """An add's labels and ``N x dim`` vectors, checked; a repeated label keeps its last vector, as repeated
    single adds would. :class:`IndexError_` when the counts differ."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    rows = as_rows(vectors, dim, "vectors")
    if len(rows) != len(labels):
        raise IndexError_(f"expected {len(labels)} x {dim} vectors, got {rows.shape}")
    if len(np.unique(labels)) != len(labels):
        _, last = np.unique(labels[::-1], return_index=True)
        keep = np.sort(len(labels) - 1 - last)
        labels, rows = labels[keep], rows[keep]
    return labels, rows


class VectorIndex(Protocol):
    dim: int

    def add(self, labels: Labels, vectors: Vectors) -> None:
        """Insert or replace vectors under ``labels``."""

    def remove(self, labels: Iterable[int]) -> None:
        """Forget ``labels`` at once: they never appear in a later search."""

    def search(self, queries: Vectors, k: int) -> tuple[Labels, NDArray[np.float32]]:
        """Top-``k`` per query, best first: ``(labels, scores)`` both ``Q x k``; missing slots are ``-1`` / ``-inf``."""

    def __len__(self) -> int: ...
