"""AnnIndex specifics the conformance suite does not reach: its label map, its vectors file, compaction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceward.index.ann import AnnIndex, AnnParams, Quantisation
from faceward.index.base import IndexError_


def unit(n: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, 128))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_label_map_survives_merges_and_replacements() -> None:
    index = AnnIndex(exact_below=10**9)  # exact scan: this test is about bookkeeping
    vectors = unit(9000)
    labels = np.arange(9000, dtype=np.int64)[::-1] * 11  # descending: merges must sort
    for start in range(0, 9000, 1000):  # overlay merges at 4096 entries
        index.add(labels[start : start + 1000], vectors[start : start + 1000])
    index.remove(labels[::3].tolist())
    index.add(labels[1:4], vectors[:3])  # replace three survivors
    assert len(index) == 9000 - 3000 + 1  # labels[3] had been removed: it comes back
    got, scores = index.search(vectors[:3], 1)
    np.testing.assert_array_equal(got[:, 0], labels[1:4])
    assert index.dead_rows == 3000 + 2  # labels[1], labels[2] replaced; labels[3] was removed, so re-added fresh


def test_vectors_file_is_private_and_zeroed_on_remove(tmp_path: Path) -> None:
    path = tmp_path / "v.f32"
    index = AnnIndex(vectors_path=path, exact_below=0)
    vectors = unit(100)
    index.add(np.arange(100), vectors)
    assert path.stat().st_mode & 0o077 == 0
    index.remove([5])
    stored = np.memmap(path, dtype=np.float32, mode="r").reshape(-1, 128)
    assert not stored[5].any() and stored[6].any()
    used = index.memory_bytes()
    assert used["vectors"] * 2 == used["mapped"] > 0  # a float16 copy resident, the float32 rows mapped
    index.close()
    assert not path.exists()


def test_f16_graph_and_bad_knobs() -> None:
    index = AnnIndex(quantisation=Quantisation.F16, exact_below=0, connectivity=8)
    vectors = unit(300)
    index.add(np.arange(300), vectors)
    assert index.search(vectors[7], 1)[0][0, 0] == 7
    with pytest.raises(IndexError_, match="unknown"):
        AnnIndex(efSearch=10)
    with pytest.raises(IndexError_, match="at least 1"):
        AnnParams(rerank_factor=0)
