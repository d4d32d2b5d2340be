"""Which ordinary portraits enrollment refuses, and whether those refusals protect matching.

For every lfw-dev identity with two or more photos, its first photo is put
through enrollment's gates (the subject: one face, or the clearly dominant one;
then each quality limit) exactly as ``POST /v1/subjects/{id}/faces`` applies
them. For each limit it reports how many first photos it refuses and how the
refused faces *would have* matched had they been enrolled: rank-1 and mean
mated score of that identity's other photos searched against the gallery of
all first photos (descriptors from ``faceward eval``'s cache, so run
``faceward eval ident`` with the same engine first), next to the same figures
for the photos it accepts. A limit earns its place only where its refused
faces match measurably worse. Every refused photo is listed with its reasons.

    FACEWARD_HOME=... python benchmarks/enroll_limits.py ../shared/datasets/lfw-dev --json-out docs/benchmarks/enroll-limits-2026-12-01.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from faceward.errors import FacewardError  # noqa: E402
from faceward.evaluation.datasets import identity_folders  # noqa: E402
from faceward.evaluation.runs import FACEWARD, analyse  # noqa: E402
from faceward.settings import Settings  # noqa: E402
from faceward.vision import Embed, QualityLimits, dominant_face, refusals  # noqa: E402
from faceward.vision.engine import EngineOptions, FaceEngine  # noqa: E402

BANDS = {
    "frontalness": [0.0, 0.15, 0.3, 0.5, 1.01],
    "face_px": [0, 40, 60, 80, 10_000],
    "sharpness": [0.0, 0.38, 0.42, 0.46, 1.01],
}


def matching(identities: dict[str, list[Path]], analyses: dict) -> dict[str, dict[str, float]]:
    """Per identity (2+ photos): rank-1 rate and mean mated score of its other photos against all first photos."""
    names = [n for n, files in identities.items() if len(files) > 1]
    vectors = {n: FACEWARD.descriptor(analyses[identities[n][0]]) for n in names}
    names = [n for n in names if vectors[n] is not None]
    gallery = np.stack([vectors[n] for n in names])
    out = {}
    for row, name in enumerate(names):
        probes = [FACEWARD.descriptor(analyses[f]) for f in identities[name][1:]]
        probes = [p for p in probes if p is not None]
        if not probes:
            continue
        scores = np.stack(probes) @ gallery.T
        out[name] = {"rank1": float(np.mean(scores.argmax(axis=1) == row)), "mated": float(np.mean(scores[:, row]))}
    return out


def summary(names: list[str], figures: dict[str, dict[str, float]]) -> dict[str, float | int]:
    known = [figures[n] for n in names if n in figures]
    if not known:
        return {"identities": 0}
    return {"identities": len(known), "rank1": round(float(np.mean([k["rank1"] for k in known])), 4),
            "mean_mated_score": round(float(np.mean([k["mated"] for k in known])), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lfw", type=Path)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    settings = Settings()
    options = EngineOptions.from_settings(settings)
    limits = QualityLimits(settings.min_face_px, settings.min_sharpness, settings.min_detector_score, settings.min_frontalness)
    identities = identity_folders(args.lfw / "images")
    enrolled = {n: files for n, files in identities.items() if len(files) > 1}
    analyses = analyse([f for files in identities.values() for f in files], options, cache_dir=settings.cache_dir)
    figures = matching(identities, analyses)
    engine = FaceEngine(options)
    quality: dict[str, dict[str, float]] = {}
    refused: dict[str, list[str]] = {}
    for name, files in enrolled.items():
        try:
            faces, size = engine.read(files[0].read_bytes(), embed=Embed.NONE)
            if not faces:
                refused[name] = ["no face was found"]
                continue
            face = faces[dominant_face([f.box for f in faces], size)]
        except FacewardError as exc:
            refused[name] = [exc.message]
            continue
        quality[name] = face.quality.as_dict()
        problems = refusals(face.quality, limits)
        if problems:
            refused[name] = problems
    per_limit = {}
    for key, label in (("face_px", "px minimum"), ("sharpness", "blurred"), ("frontalness", "turned"),
                       ("detector_score", "detector score")):
        hit = [n for n, reasons in refused.items() if any(label in r for r in reasons)]
        per_limit[key] = {"refused": len(hit), "would_have_matched": summary(hit, figures)}
    per_limit["subject"] = {
        "refused": sum(1 for r in refused.values() if "clearly the subject" in r[0] or "no face" in r[0]),
    }
    bands = {}
    for key, edges in BANDS.items():
        bands[key] = [
            {"from": lo, "to": hi, **summary([n for n, q in quality.items() if lo <= q[key] < hi], figures)}
            for lo, hi in zip(edges[:-1], edges[1:])
        ]
    report = {
        "engine": engine.describe(load_detector=False)["detector"], "limits": {
            "min_face_px": limits.min_face_px, "min_sharpness": limits.min_sharpness,
            "min_detector_score": limits.min_detector_score, "min_frontalness": limits.min_frontalness},
        "first_photos": len(enrolled), "refused": len(refused), "refused_rate": round(len(refused) / len(enrolled), 4),
        "accepted_would_match": summary([n for n in enrolled if n not in refused], figures),
        "per_limit": per_limit, "bands": bands,
        "refused_photos": {str(enrolled[n][0].relative_to(args.lfw / "images")): r for n, r in sorted(refused.items())},
    }
    print(json.dumps(report, indent=1))
    print(f"\n{len(refused)} of {len(enrolled)} first photos refused ({100 * len(refused) / len(enrolled):.2f}%):")
    for photo, reasons in report["refused_photos"].items():  # type: ignore[union-attr]
        print(f"- {photo}: {'; '.join(reasons)}")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
