"""AnnIndex on galleries big enough to train PQ codebooks and build graphs: compaction, recall of the
short list, the graph built at ``exact_below``, sharded scans. Seconds each (FAISS k-means, HNSW builds),
so they live here rather than in ``tests/unit/index/test_ann.py``."""

from __future__ import annotations

import numpy as np
import pytest

from faceward.index.ann import AnnIndex
from faceward.index.base import IndexError_


def unit(n: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, 128))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("quantisation", ["pq4", "i8"])
def test_compact_drops_dead_rows_and_keeps_answers(quantisation: str) -> None:
    index = AnnIndex(exact_below=0, quantisation=quantisation)
    vectors = unit(600)
    index.add(np.arange(600), vectors)
    index.remove(range(0, 600, 3))
    kept = np.array([n for n in range(600) if n % 3])
    truth = kept[np.argsort(-(vectors[:20] @ vectors[kept].T), axis=1)[:, :5]]

    def recall(got: np.ndarray) -> float:
        return float(np.mean([len(set(g) & set(t)) / 5 for g, t in zip(got.tolist(), truth.tolist())]))

    assert index._coder is not None and index._coder.centre.any()  # 600 rows: a centre was fitted
    assert recall(index.search(vectors[:20], 5)[0]) >= 0.97  # approximate: the graph was built on 2 threads
    index.compact()
    assert index.dead_rows == 0 and len(index) == 400 and index.memory_bytes()["graph"] > 0
    assert recall(index.search(vectors[:20], 5)[0]) >= 0.97


def test_pq4_shortlist_finds_the_true_neighbours_of_clustered_faces() -> None:
    """A short list well below the gallery: the codes alone must rank the true top 10 into it."""
    rng = np.random.default_rng(3)
    centres = unit(400, seed=11)
    people = rng.integers(0, 400, 6000)
    vectors = centres[people] + 0.6 * rng.standard_normal((6000, 128)).astype(np.float32) / np.sqrt(128)
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    index = AnnIndex(exact_below=0, shortlist=200, rerank_factor=1, min_candidates=1)
    index.add(np.arange(6000), vectors)
    assert index.memory_bytes()["graph"] < 6000 * 40  # 32 B of codes a face, and the codebooks
    queries = vectors[:100] + 0.2 * rng.standard_normal((100, 128)).astype(np.float32) / np.sqrt(128)
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    got, scores = index.search(queries, 10)
    hits = np.mean([len(set(g) & set(t)) / 10 for g, t in zip(got.tolist(), truth.tolist())])
    assert hits >= 0.95
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, got, axis=1), atol=1e-6)  # exact scores
    index.remove(got[:, 0].tolist())
    again, _ = index.search(queries, 10)
    assert not set(got[:, 0].tolist()) & set(again.ravel().tolist())


@pytest.mark.parametrize("quantisation", ["pq4", "i8"])
def test_graph_is_built_when_the_index_reaches_exact_below(quantisation: str) -> None:
    index = AnnIndex(exact_below=300, quantisation=quantisation)
    # A strong common direction, as face descriptors have. (Not one of the rows: a row at the
    # centre would be every row's nearest neighbour, a hub HNSW's pruning cannot link around.)
    vectors = unit(400) * 0.3 + unit(1, seed=7)[0]
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    index.add(np.arange(299), vectors[:299])
    assert index.memory_bytes()["graph"] == 0
    index.add(np.arange(299, 400), vectors[299:])
    assert index.memory_bytes()["graph"] > 0
    truth = np.argsort(-(vectors[:30] @ vectors.T), axis=1)[:, :10]
    got, scores = index.search(vectors[:30], 10)
    np.testing.assert_array_equal(got, truth)
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


def test_pq4_shards_search_together(monkeypatch: pytest.MonkeyPatch) -> None:
    import faceward.index.pq as pq

    monkeypatch.setattr(pq, "SHARD_ROWS", 1000)  # 3,500 rows: four shards scanned in parallel
    vectors = unit(3500, seed=4)
    index = AnnIndex(exact_below=0, shortlist=50)
    index.add(np.arange(2000) * 7, vectors[:2000])
    index.add(np.arange(2000, 3500) * 7, vectors[2000:])
    assert isinstance(index._graph, pq.PqTable) and len(index._graph._shards) == 4
    probes = vectors[[3, 999, 1000, 2500, 3499]]
    got, scores = index.search(probes, 1)
    assert got[:, 0].tolist() == [21, 6993, 7000, 17500, 24493]
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
