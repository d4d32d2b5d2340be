"""Fit enrollment's sharpness and frontalness limits on lfw-dev *probe* photos (decision 022).

Enrollment's refusals are reported on the first photo of each identity with two
or more photos (``benchmarks/enroll_limits.py``); the limits are fitted on the
**other** photos of those identities (the probes), never on the first photos.
Each probe is searched against the gallery of first photos (the shipped
pipeline's flip-averaged templates, from ``faceward eval``'s cache: run
``faceward eval ident`` with the same engine first) and scored rank-1 hit or
miss. A limit refuses faces only where they match measurably worse: it is the
largest value ``t`` for which the probes under ``t``, together, are found at
rank 1 at most ``--max-rank1`` (80%) of the time, with at least ``--min-probes``
(20) of them to show it; no limit (0) if there is no such ``t``.

    FACEWARD_HOME=... python scripts/fit_quality_limits.py ../shared/datasets/lfw-dev
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from faceward.evaluation.datasets import identity_folders
from faceward.evaluation.runs import FACEWARD, analyse
from faceward.settings import Settings
from faceward.vision.engine import EngineOptions

GRIDS = {
    "sharpness": [round(0.02 * i, 2) for i in range(1, 31)],
    "frontalness": [round(0.05 * i, 2) for i in range(1, 17)],
}


def probe_hits(identities: dict[str, list[Path]], analyses: dict) -> list[tuple[Path, bool]]:
    """Each probe (a photo of an identity with 2+ photos, but its first) and whether it is found at rank 1."""
    names = [n for n, files in identities.items() if len(files) > 1]
    firsts = {n: FACEWARD.descriptor(analyses[identities[n][0]]) for n in names}
    names = [n for n in names if firsts[n] is not None]
    gallery = np.stack([firsts[n] for n in names])
    out = []
    for row, name in enumerate(names):
        for path in identities[name][1:]:
            probe = FACEWARD.descriptor(analyses[path])
            if probe is not None:
                out.append((path, bool(int(np.argmax(gallery @ probe)) == row)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("lfw", type=Path)
    parser.add_argument("--max-rank1", type=float, default=0.80)
    parser.add_argument("--min-probes", type=int, default=20)
    args = parser.parse_args()
    settings = Settings()
    options = EngineOptions.from_settings(settings)
    identities = identity_folders(args.lfw / "images")
    analyses = analyse([f for files in identities.values() for f in files], options, cache_dir=settings.cache_dir)
    hits = [(analyses[p].primary.quality, hit) for p, hit in probe_hits(identities, analyses)
            if analyses[p].hog_found and analyses[p].primary is not None]
    overall = float(np.mean([h for _, h in hits]))
    report: dict[str, object] = {"probes": len(hits), "rank1_all": round(overall, 4),
                                 "rule": f"largest t: probes under t found at rank 1 <= {args.max_rank1}, n >= {args.min_probes}"}
    for key, grid in GRIDS.items():
        values = np.array([q[key] for q, _ in hits])
        found = np.array([h for _, h in hits])
        rows, limit = [], 0.0
        for t in grid:
            below = values < t
            n = int(below.sum())
            rank1 = float(found[below].mean()) if n else None
            rows.append({"t": t, "probes_under": n, "rank1_under": None if rank1 is None else round(rank1, 4),
                         "rank1_at_or_over": round(float(found[~below].mean()), 4)})
            if rank1 is not None and n >= args.min_probes and rank1 <= args.max_rank1:
                limit = t
        report[key] = {"limit": limit, "percentiles_1_5_50": [round(float(np.percentile(values, p)), 4) for p in (1, 5, 50)],
                       "curve": rows}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
