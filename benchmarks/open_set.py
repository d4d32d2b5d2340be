"""Open-set identification: FNIR at fixed FPIR on lfw-dev mates, galleries padded with distractors.

    python benchmarks/open_set.py --distractors 0 100000 1000000 --backend exact --json

Gallery: one image of every other lfw-dev identity that has two or more images
(see ``scale.split``), plus ``D`` synthetic distractors (``scale.DistractorModel``).
Mated probes: the other images of enrolled identities. Non-mated probes: every
image of the identities left out, and lfw-dev singletons; none is enrolled.

With a candidate list of length one (the investigative default), at threshold T:
  FPIR(T) = share of non-mated probes whose best score is >= T;
  FNIR(T) = share of mated probes whose best candidate is not their mate, or scores < T.
T is set on the non-mated scores so that FPIR is at most the target (0.01, 0.001).
With about two thousand non-mated probes, FPIR 0.001 rests on two or three
probes: read that column as indicative. The scores are exact inner products
for both backends (the ANN index re-ranks exactly), so any FNIR difference
between them is recall lost in the graph.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import (  # noqa: E402  (a sibling script, not a package)
    RESULTS,
    DistractorModel,
    add_all,
    build_gallery,
    evaluate_open_set,
    exact_top_k,
    make_backend,
    mate_labels,
    real_descriptors,
    split,
)

def run(args: argparse.Namespace) -> dict[str, Any]:
    real = real_descriptors()
    parts = split(real)
    model = DistractorModel.fit(real.vectors)
    mate_label = mate_labels(parts)
    probes = np.concatenate([parts.mated, parts.non_mated])
    m = len(parts.mated)
    rows = []
    for distractors in args.distractors:
        size = len(parts.gallery) + distractors
        gallery = build_gallery(parts.gallery, size, model, args.seed)
        for backend in args.backend:
            started = time.perf_counter()
            if backend == "exact":
                labels, scores = exact_top_k(gallery, probes, 1)
                build_s = 0.0
            else:
                index = make_backend(backend, args, tenant=f"open-set-{distractors}")
                build_s = add_all(index, gallery)
                labels, scores = index.search(probes, 1)
                if hasattr(index, "close"):
                    index.close()
            row = {"backend": backend, "distractors": distractors, "gallery_size": size,
                   "build_s": build_s, "seconds": time.perf_counter() - started}
            row.update(evaluate_open_set(labels[:m, 0], scores[:m, 0], mate_label, scores[m:, 0]))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
        del gallery
    return {
        "mated_probes": m,
        "non_mated_probes": len(parts.non_mated),
        "enrolled_identities": len(parts.gallery),
        "candidate_list_length": 1,
        "distractor_model": "Gaussian(mean, full covariance of the lfw-dev descriptors), normalised",
        "distractor_check": model.check(real),
        "results": rows,
        "loadavg_at_end": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--distractors", type=int, nargs="+", default=[0, 100_000, 1_000_000])
    parser.add_argument("--backend", nargs="+", choices=["exact", "ann", "milvus"], default=["exact"])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    # ANN knobs, as in scale.py (None: the AnnParams defaults).
    for knob in ("connectivity", "expansion-add", "expansion-search", "rerank-factor"):
        parser.add_argument(f"--{knob}", dest=knob.replace("-", "_"), type=int)
    parser.add_argument("--quantisation", choices=["i8", "f16"])
    parser.add_argument("--vectors-dir", dest="vectors_dir")
    parser.add_argument("--milvus-uri", dest="milvus_uri", default=str(Path.home() / ".cache/faceward-bench/open-set.db"))
    parser.add_argument("--milvus-index", dest="milvus_index", default="AUTOINDEX")
    parser.add_argument("--k", type=int, default=1)
    args = parser.parse_args(argv)
    result = run(args)
    RESULTS.mkdir(exist_ok=True)
    name = f"open_set-{'-'.join(args.backend)}-{'-'.join(str(d) for d in args.distractors)}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
