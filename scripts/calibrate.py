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

from faceward.evaluation.calibration import calibration_identities, check_enough, pair_scores
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
    identities, _ = calibration_identities(args.folder)  # the protocol of faceward.evaluation.calibration
    paths = [f for files in identities.values() for f in files]
    options = replace(EngineOptions.from_settings(settings), engine=Engine(args.engine), recognizer=None)
    analyses = analyse(paths, options, cache_dir=settings.cache_dir, workers=args.workers or None)
    for flip, model_id in ((True, f"{DLIB_DESCRIPTOR_ID}/flip"), (False, DLIB_DESCRIPTOR_ID)):
        scores = pair_scores(identities, analyses, Variant(model_id, flip_average=flip, mmod_fallback=True))
        check_enough(scores)
        genuine, impostor = scores.genuine, scores.impostor
        meta = {
            "source": "lfw-dev identities absent from pairs.csv",
            "identities": len(identities),
            "images": scores.images,
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
