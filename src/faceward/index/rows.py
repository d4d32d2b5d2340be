"""The float32 rows behind :class:`~faceward.index.ann.AnnIndex`, and its label -> row table.

Labels map to *rows* of the row store, and the short list is keyed by row, so a search
result indexes the rows without any lookup; a removed label's row is zeroed at once and
marked dead in the row -> label table (kept by the index), so it is never returned.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray


class RowStore:
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


class LabelRows:
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


__all__ = ["LabelRows", "RowStore"]
