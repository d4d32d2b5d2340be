"""Fit the YuNet -> HOG-like box map (``faceward.vision.detect.YUNET_TO_HOG``) on lfw-dev.

Only identities that no pair of ``pairs.csv`` uses are read, so the map is
never fitted on the images `faceward eval pairs` scores. On each image where
HOG (upsample 1) and YuNet each find exactly one face and the two overlap,
the map's four numbers are the medians of::

    dx = (hog_cx - yunet_cx) / yunet_w      dy = (hog_cy - yunet_cy) / yunet_h
    sw = hog_w / yunet_w                    sh = hog_h / yunet_h

Medians, not least squares: a few HOG boxes on the wrong face must not move it.

It also fits the map from YuNet's 5 points (``YUNET_POINTS_TO_HOG``, tried
and not the default, decision 012): centroid shift and size in units of
``s = hypot(eye distance, eyes-to-mouth distance)``, medians over the first half
of those images, and checks both maps on the second half: how far dlib's 5
points predicted in the mapped box land from those predicted in HOG's own box
(mean distance over the inter-ocular distance), and the mapped box's IoU with HOG's.

    python scripts/fit_box_map.py ../shared/datasets/lfw-dev [--limit 1500]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from faceward.vision.decode import read_image_file
from faceward.vision.align import LandmarkPredictor
from faceward.vision.detect import IDENTITY_MAP, YUNET_TO_HOG, BoxMap, HogDetector, KeypointBoxMap, YuNetDetector


def held_out_images(root: Path, limit: int) -> list[Path]:
    used: set[str] = set()
    with (root / "pairs.csv").open() as handle:
        for row in csv.DictReader(handle):
            used.add(row["image_a"].split("/")[0])
            used.add(row["image_b"].split("/")[0])
    folders = sorted(p for p in (root / "images").iterdir() if p.is_dir() and p.name not in used)
    images = [f for folder in folders for f in sorted(folder.glob("*.jpg"))]
    step = max(1, len(images) // limit)
    return images[::step][:limit]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("lfw", type=Path)
    parser.add_argument("--limit", type=int, default=1500)
    args = parser.parse_args()
    hog, yunet = HogDetector(), YuNetDetector(threads=1, box_map=IDENTITY_MAP, points_map=None)
    rows = []
    kept = []
    paths = held_out_images(args.lfw, args.limit)
    for path in paths:
        image, _ = read_image_file(path)
        h, y = hog.detect(image, 1), yunet.detect(image)
        if len(h) != 1 or len(y) != 1 or h[0].box.iou(y[0].box) < 0.3:
            continue
        hb, yb = h[0].box, y[0].box
        rows.append((
            ((hb.left + hb.right) - (yb.left + yb.right)) / 2 / yb.width,
            ((hb.top + hb.bottom) - (yb.top + yb.bottom)) / 2 / yb.height,
            hb.width / yb.width,
            hb.height / yb.height,
        ))
        kept.append((image, hb, yb, y[0].landmarks))
    fit = np.median(np.asarray(rows), axis=0)
    spread = np.percentile(np.asarray(rows), [25, 75], axis=0)
    points = points_map_fit(kept[: len(kept) // 2])
    print(json.dumps({
        "points_map": {"dx": round(points.dx, 4), "dy": round(points.dy, 4), "sw": round(points.sw, 4),
                       "sh": round(points.sh, 4), "fitted_on": len(kept) // 2},
        "held_out_check": held_out_check(kept[len(kept) // 2 :], YUNET_TO_HOG, points),
        "images_read": len(paths), "images_fitted": len(rows),
        "dx": round(float(fit[0]), 4), "dy": round(float(fit[1]), 4),
        "sw": round(float(fit[2]), 4), "sh": round(float(fit[3]), 4),
        "iqr": [[round(float(a), 4), round(float(b), 4)] for a, b in zip(*spread)],
    }, indent=1))


def points_map_fit(rows: list) -> KeypointBoxMap:
    fit = []
    for _, hb, _, kp in rows:
        kp = kp.astype(np.float64)
        eyes, mouth = (kp[0] + kp[1]) / 2, (kp[3] + kp[4]) / 2
        scale = np.hypot(np.linalg.norm(kp[1] - kp[0]), np.linalg.norm(mouth - eyes))
        centre = kp.mean(axis=0)
        fit.append((((hb.left + hb.right) / 2 - centre[0]) / scale, ((hb.top + hb.bottom) / 2 - centre[1]) / scale,
                    hb.width / scale, hb.height / scale))
    dx, dy, sw, sh = (float(v) for v in np.median(np.asarray(fit), axis=0))
    return KeypointBoxMap(dx, dy, sw, sh)


def held_out_check(rows: list, box_map: BoxMap, points: KeypointBoxMap) -> dict[str, dict[str, float]]:
    predictor = LandmarkPredictor()
    errors: dict[str, list[float]] = {"box_map": [], "points_map": []}
    overlaps: dict[str, list[float]] = {"box_map": [], "points_map": []}
    for image, hb, yb, kp in rows:
        height, width = image.shape[:2]
        reference = predictor.predict(image, hb)
        iod = float(np.linalg.norm(reference[0:2].mean(axis=0) - reference[2:4].mean(axis=0)))
        for name, box in (("box_map", box_map.apply(yb.left, yb.top, yb.right, yb.bottom, height, width)),
                          ("points_map", points.apply(kp, height, width))):
            errors[name].append(float(np.linalg.norm(predictor.predict(image, box) - reference, axis=1).mean()) / iod)
            overlaps[name].append(box.iou(hb))
    return {name: {"images": len(rows), "landmark_error_over_iod_mean": round(float(np.mean(errors[name])), 4),
                   "median": round(float(np.median(errors[name])), 4), "p95": round(float(np.percentile(errors[name], 95)), 4),
                   "iou_with_hog_median": round(float(np.median(overlaps[name])), 4)} for name in errors}


if __name__ == "__main__":
    main()
