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

``--role gallery`` (decision 037) fits the limits on the role an enrolled face
plays: the *gallery* photo. Still never touching a first photo, each other
photo of an identity with three or more photos takes its turn as that
identity's gallery photo, beside the second photo of every other identity; the
identity's remaining photos (not its first) are searched, rank-1 hit or miss.
A gallery photo's figure is its probes' rank-1 rate, and photos under ``t``
are averaged photo by photo (an identity with hundreds of photos would
otherwise outweigh the rest); ``t`` needs at least ``--min-probes`` gallery
photos under it.

    FACEWARD_HOME=... python scripts/fit_quality_limits.py ../shared/datasets/lfw-dev [--role gallery]
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


def gallery_hits(identities: dict[str, list[Path]], analyses: dict) -> list[tuple[Path, float]]:
    """Each gallery photo (an identity's photo, never its first, of identities with 3+ photos) and the
    rank-1 rate of that identity's other photos (not its first) against it and every other identity's second."""
    def vector(path: Path) -> np.ndarray | None:
        analysis = analyses[path]
        return FACEWARD.descriptor(analysis) if analysis.hog_found and analysis.primary is not None else None

    names = [n for n, files in identities.items() if len(files) > 1]
    seconds = {n: vector(identities[n][1]) for n in names}
    names = [n for n in names if seconds[n] is not None]
    others = np.stack([seconds[n] for n in names])
    out = []
    for row, name in enumerate(names):
        photos = [(p, v) for p in identities[name][1:] if (v := vector(p)) is not None]
        if len(photos) < 2:
            continue
        own = np.stack([v for _, v in photos])
        rivals = own @ np.delete(others, row, axis=0).T
        best_rival = rivals.max(axis=1)
        mated = own @ own.T
        for g, (path, _) in enumerate(photos):
            probes = np.arange(len(photos)) != g
            out.append((path, float(np.mean(mated[g, probes] > best_rival[probes]))))
    return out


def fit(values: np.ndarray, found: np.ndarray, grid: list[float], max_rank1: float, min_count: int) -> dict[str, object]:
    """The largest ``t`` in ``grid`` under which ``found`` averages at most ``max_rank1`` over ``min_count`` or more."""
    rows, limit = [], 0.0
    for t in grid:
        below = values < t
        n = int(below.sum())
        rank1 = float(found[below].mean()) if n else None
        rows.append({"t": t, "under": n, "rank1_under": None if rank1 is None else round(rank1, 4),
                     "rank1_at_or_over": round(float(found[~below].mean()), 4)})
        if rank1 is not None and n >= min_count and rank1 <= max_rank1:
            limit = t
    return {"limit": limit, "percentiles_1_5_50": [round(float(np.percentile(values, p)), 4) for p in (1, 5, 50)],
            "curve": rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("lfw", type=Path)
    parser.add_argument("--max-rank1", type=float, default=0.80)
    parser.add_argument("--min-probes", type=int, default=20)
    parser.add_argument("--role", choices=("probe", "gallery"), default="probe")
    args = parser.parse_args()
    settings = Settings()
    options = EngineOptions.from_settings(settings)
    identities = identity_folders(args.lfw / "images")
    analyses = analyse([f for files in identities.values() for f in files], options, cache_dir=settings.cache_dir)
    if args.role == "gallery":
        hits = [(analyses[p].primary.quality, rate) for p, rate in gallery_hits(identities, analyses)]
        unit = "gallery photos"
    else:
        hits = [(analyses[p].primary.quality, float(hit)) for p, hit in probe_hits(identities, analyses)
                if analyses[p].hog_found and analyses[p].primary is not None]
        unit = "probes"
    found = np.array([h for _, h in hits])
    report: dict[str, object] = {
        "role": args.role, unit: len(hits), "rank1_all": round(float(found.mean()), 4),
        "rule": f"largest t: {unit} under t found at rank 1 <= {args.max_rank1}, n >= {args.min_probes}"}
    for key, grid in GRIDS.items():
        values = np.array([q[key] for q, _ in hits])
        report[key] = fit(values, found, grid, args.max_rank1, args.min_probes)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
