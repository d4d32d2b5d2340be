"""ExactIndex specifics beyond the conformance suite."""

from __future__ import annotations


def test_exact_search_in_blocks_matches_one_shot() -> None:
    import numpy as np

    from faceward.index import ExactIndex

    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(5000, 8)).astype(np.float32)
    index = ExactIndex(8)
    index.add(np.arange(5000, dtype=np.int64), vectors)
    queries = rng.normal(size=(4000, 8)).astype(np.float32)  # 4000 x 5000 scores: more than one block
    labels, scores = index.search(queries, 3)
    brute = np.argsort(-(queries @ vectors.T), axis=1)[:, :3]
    assert (labels == brute).all() and scores.shape == (4000, 3)
    assert np.array_equal(index.items()[0], np.arange(5000))
