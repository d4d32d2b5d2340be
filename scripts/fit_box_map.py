"""Fit the YuNet -> HOG-like box map (``faceward.vision.detect.YUNET_TO_HOG``) on lfw-dev.

Only identities that no pair of ``pairs.csv`` uses are read, so the map is
never fitted on the images `faceward eval pairs` scores. On each image where
HOG (upsample 1) and YuNet each find exactly one face and the two overlap,
the map's four numbers are the medians of::

    dx = (hog_cx - yunet_cx) / yunet_w      dy = (hog_cy - yunet_cy) / yunet_h
    sw = hog_w / yunet_w                    sh = hog_h / yunet_h

Medians, not least squares: a few HOG boxes on the wrong face must not move it.

    python scripts/fit_box_map.py ../shared/datasets/lfw-dev [--limit 1500]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from faceward.vision.decode import read_image_file
from faceward.vision.detect import IDENTITY_MAP, HogDetector, YuNetDetector


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
    hog, yunet = HogDetector(), YuNetDetector(threads=1, box_map=IDENTITY_MAP)
    rows = []
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
    fit = np.median(np.asarray(rows), axis=0)
    spread = np.percentile(np.asarray(rows), [25, 75], axis=0)
    print(json.dumps({
        "images_read": len(paths), "images_fitted": len(rows),
        "dx": round(float(fit[0]), 4), "dy": round(float(fit[1]), 4),
        "sw": round(float(fit[2]), 4), "sh": round(float(fit[3]), 4),
        "iqr": [[round(float(a), 4), round(float(b), 4)] for a, b in zip(*spread)],
    }, indent=1))


if __name__ == "__main__":
    main()
