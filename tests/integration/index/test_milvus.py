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
import pytest
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


def test_a_server_whose_starter_is_killed_does_not_outlive_it(tmp_path: Path) -> None:
    # A test run killed by CI's timeout used to leave `milvus run standalone` behind, ports and a core taken.
    import os
    import signal
    import subprocess
    import sys
    import time

    from faceward.index.milvus_server import milvus_server_available

    if not milvus_server_available():
        pytest.skip("the Milvus standalone server is not installed: pip install milvus (part of the test extra)")
    starter = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time\n"
            "from faceward.index.milvus_server import MilvusStandalone\n"
            f"server = MilvusStandalone({str(tmp_path / 'data')!r}).start()\n"
            "print(server.pid, flush=True)\n"
            "time.sleep(600)\n"
        )],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert starter.stdout is not None
        pid = int(starter.stdout.readline())
        os.kill(pid, 0)  # the server runs
    finally:
        starter.kill()  # no stop(), no atexit: as SIGKILL leaves it
        starter.wait()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"the Milvus server {pid} outlived the process that started it by 40 s")
