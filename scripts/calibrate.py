"""Measure genuine and impostor score distributions and write the calibration tables shipped as package data.

Calibration identities are those of lfw-dev that appear in no pair of
``pairs.csv``, so the tables are never fitted on the pairs that ``eval pairs``
reports. Impostor scores: every cross-identity pair of those images (about a
million). Genuine scores: every same-identity pair among them.

    python scripts/calibrate.py ../shared/datasets/lfw-dev [--engine onnx]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from faceward.evaluation.datasets import identity_folders, read_pairs
from faceward.evaluation.runs import Variant, analyse
from faceward.scoring.calibration import Calibration, calibration_path
from faceward.settings import Engine, load_settings
from faceward.vision.engine import EngineOptions
from faceward.vision.models import DLIB_DESCRIPTOR_ID


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--engine", choices=[e.value for e in Engine], default="onnx")
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    settings = load_settings()
    in_pairs = {p.a.split("/")[0] for p in read_pairs(args.folder)} | {p.b.split("/")[0] for p in read_pairs(args.folder)}
    identities = {k: v for k, v in identity_folders(args.folder).items() if k not in in_pairs}
    paths = [f for files in identities.values() for f in files]
    options = replace(EngineOptions.from_settings(settings), engine=Engine(args.engine))
    analyses = analyse(paths, options, cache_dir=settings.cache_dir, workers=args.workers or None)
    for flip, model_id in ((True, f"{DLIB_DESCRIPTOR_ID}/flip"), (False, DLIB_DESCRIPTOR_ID)):
        variant = Variant(model_id, flip_average=flip, mmod_fallback=True)
        owners, vectors = [], []
        for owner, files in enumerate(identities.values()):
            for f in files:
                analysis = analyses[f]
                if analysis.hog_found or analysis.mmod is not None:  # calibrate on detected faces only
                    vector = variant.descriptor(analysis)
                    if vector is not None:
                        owners.append(owner)
                        vectors.append(vector)
        v = np.stack(vectors)
        o = np.array(owners)
        scores = v @ v.T
        upper = np.triu(np.ones_like(scores, dtype=bool), k=1)
        same = o[:, None] == o[None, :]
        genuine = scores[upper & same]
        impostor = scores[upper & ~same]
        meta = {
            "source": "lfw-dev identities absent from pairs.csv",
            "identities": len(identities),
            "images": len(vectors),
            "engine": args.engine,
        }
        table = Calibration.from_scores(model_id, genuine, impostor, meta)
        path = calibration_path(model_id)
        path.write_text(json.dumps(table.to_json(), indent=0) + "\n")
        print(
            f"{model_id}: {len(impostor)} impostor / {len(genuine)} genuine pairs; "
            f"threshold@FMR1e-3={table.threshold(1e-3):.4f} (FNMR {table.fnmr_at(table.threshold(1e-3)):.3f}), "
            f"@1e-4={table.threshold(1e-4):.4f}, @1e-5={table.threshold(1e-5):.4f} -> {path}"
        )


if __name__ == "__main__":
    main()
