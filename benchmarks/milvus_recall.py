"""Why a Milvus SCANN collection misses neighbours: one gallery, searched at each stage of its life.

    python benchmarks/milvus_recall.py --size 100000 --json            # faceward's server settings
    python benchmarks/milvus_recall.py --size 100000 --interim-index   # Milvus's default interim IVF on

A synthetic anisotropic gallery (unit vectors; per-dimension scales from 1 to 0.05 around a common
mean, like face descriptors that share a direction) in a SCANN collection and a FLAT one, each
searched right after insertion, once ``describe_index`` says every row is indexed (the build), once
the query node serves the index (the handoff, :meth:`MilvusIndex.wait_indexed`), and then at several
``reorder_k``. Recall is against brute-force inner products in float32 over the same rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import CACHE, exact_top_k, recall  # noqa: E402

from faceward.index.milvus import MilvusIndex  # noqa: E402
from faceward.index.milvus_server import REQUIRED_CONFIG, MilvusStandalone  # noqa: E402


def gallery(size: int, queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scales, mean = np.geomspace(1.0, 0.05, 128), rng.standard_normal(128) * 0.3

    def sample(n: int) -> np.ndarray:
        x = (rng.standard_normal((n, 128)) * scales + mean).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    rows = sample(size)
    near = rows[rng.choice(size, queries, replace=False)] + 0.05 * sample(queries)
    return rows, (near / np.linalg.norm(near, axis=1, keepdims=True)).astype(np.float32)


def built(index: MilvusIndex) -> None:
    """Flush and wait for ``describe_index`` to count every row (what the benchmark used to wait for)."""
    index.flush()
    client, name = index._client, index.collection
    while True:
        info = client.describe_index(name, index_name=client.list_indexes(name)[0])
        if int(info.get("pending_index_rows", 0)) == 0 and int(info.get("indexed_rows", 0)) >= int(info.get("total_rows", 0)):
            return
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--interim-index", dest="interim_index", action="store_true")
    parser.add_argument("--reorder-sweep", dest="reorder_sweep", type=int, nargs="*", default=[1024, 4096, 8192])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rows, queries = gallery(args.size, args.queries, args.seed)
    truth, scores = exact_top_k(rows, queries, 11)
    extra = {"queryNode.segcore.interimIndex.enableIndex": True} if args.interim_index else {}
    out: dict[str, Any] = {"size": args.size, "queries": args.queries, "server_config": {**REQUIRED_CONFIG, **extra},
                           "min_gap_10th_11th": float((scores[:, 9] - scores[:, 10]).min()), "stages": []}

    def measure(index: MilvusIndex, kind: str, stage: str, **more: Any) -> None:
        got, found = index.search(queries, 10)
        row = {"index": kind, "stage": stage, "recall_at_1": recall(got, truth, 1), "recall_at_10": recall(got, truth, 10),
               "max_score_error": float(np.abs(found - scores[:, :10]).max()),
               "segments": [{"rows": r, "indexed": i} for r, i in index.segments()], **more}
        out["stages"].append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    with MilvusStandalone(CACHE / "milvus-recall-data", extra=extra) as server:
        for kind, build, search in (("SCANN", {"nlist": 16}, {"nprobe": 16, "reorder_k": 1024}), ("FLAT", {}, {})):
            index = MilvusIndex(f"recall-{kind}", uri=server.uri, index_type=kind, index_params=build, search_params=search)
            try:
                index.add(np.arange(args.size), rows)
                measure(index, kind, "inserted")
                built(index)
                measure(index, kind, "built")
                index.wait_indexed()
                measure(index, kind, "served")
                for reorder_k in args.reorder_sweep if kind == "SCANN" else []:
                    index.search_params = {**search, "reorder_k": reorder_k}
                    measure(index, kind, "served", reorder_k=reorder_k)
            finally:
                index.drop()
                index.close()
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
