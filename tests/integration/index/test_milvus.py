"""MilvusIndex against the session's real Milvus standalone server: what the contract suite cannot see.

The conformance suite checks labels and scores on 300 rows; these check how the server is run
(rows its index does not cover yet are scanned exactly) and that ``wait_indexed`` returns only
once the query node searches through the built index.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from faceward.index.milvus import MilvusIndex
from faceward.index.milvus_server import REQUIRED_CONFIG


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def setting(config: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        config = config[part]
    return config


def test_the_server_runs_without_the_interim_index(milvus_server: Any) -> None:
    # Milvus's default searches unindexed rows through an IVF probing 16 of 128 lists (recall@10 0.82 at 100k).
    written = yaml.safe_load((Path(milvus_server.data_dir) / "configs" / "milvus.yaml").read_text())
    assert REQUIRED_CONFIG == {"queryNode.segcore.interimIndex.enableIndex": False}
    for key, value in REQUIRED_CONFIG.items():
        assert setting(written, key) == value


def test_rows_are_found_exactly_before_and_after_the_index_is_served(milvus_uri: str) -> None:
    rng = np.random.default_rng(7)
    vectors = unit(rng.standard_normal((2000, 128)))  # above Milvus's 1,024-row threshold: this segment is indexed
    queries = unit(vectors[:20] + 0.3 * rng.standard_normal((20, 128)))
    want = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :10]
    index = MilvusIndex("acme", uri=milvus_uri, prefix=f"t{uuid.uuid4().hex[:12]}")
    try:
        index.add(np.arange(2000), vectors)
        got, _ = index.search(queries, 10)  # not yet indexed: scanned exactly
        np.testing.assert_array_equal(got, want)
        waited = index.wait_indexed(timeout_s=600, poll_s=0.5)
        segments = index.segments()
        assert waited > 0 and sum(rows for rows, _ in segments) == 2000
        assert all(indexed for _, indexed in segments)
        got, _ = index.search(queries, 10)  # through SCANN, every list probed, the top reorder_k re-scored
        np.testing.assert_array_equal(got, want)
    finally:
        index.drop()
        index.close()
