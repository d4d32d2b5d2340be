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


class VectorIndex(Protocol):
    dim: int

    def add(self, labels: Labels, vectors: Vectors) -> None:
        """Insert or replace vectors under ``labels``."""

    def remove(self, labels: Iterable[int]) -> None:
        """Forget ``labels`` at once: they never appear in a later search."""

    def search(self, queries: Vectors, k: int) -> tuple[Labels, NDArray[np.float32]]:
        """Top-``k`` per query, best first: ``(labels, scores)`` both ``Q x k``; missing slots are ``-1`` / ``-inf``."""

    def __len__(self) -> int: ...
