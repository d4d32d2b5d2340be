"""Fit the enrollment subject rule (``faceward.vision.subject.DOMINANT_RATIO``) on lfw-dev.

Only identities with a **single** photo are read: enrollment's refusals are
reported (``benchmarks/enroll_limits.py``) on the first photos of identities
with two or more, so the rule is never fitted on the photos it is judged on.

LFW's labelled face is the one its crop is centred on: the ground-truth
subject is the detected face whose box holds the image centre. Because that
makes centrality trivially right on LFW, every photo is also **re-framed**:
``--frames`` random windows (0.5-1.0 of the side, aspect 3:4 to 4:3) that hold
the subject's whole box, placed uniformly where they can be, so the subject
sits off-centre as in a casual photo. Faces whose centre leaves the window
are dropped, the others clipped to it.

For each ratio, over the re-framed photos with two or more faces: the share
the rule refuses as ambiguous and the share where it picks a bystander
(enrolling the wrong person). On lfw-dev no ratio from 1.0 up picks a bystander
once centrality counts, so the ratio is the widest safety margin that costs
little: the largest ratio that refuses at most ``--refusal-budget`` (0.1%) of
the re-framed photos and picks a bystander in at most ``--max-wrong`` (0.2%).

    python scripts/fit_subject_rule.py ../shared/datasets/lfw-dev [--frames 8]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from faceward.vision.decode import read_image_file
from faceward.vision.engine import EngineOptions, FaceEngine
from faceward.vision.subject import prominence
from faceward.vision.types import Box

RATIOS = [round(1.0 + 0.05 * i, 2) for i in range(0, 31)]


def single_photo_images(root: Path) -> list[Path]:
    return sorted(f for d in sorted((root / "images").iterdir()) if len(files := list(d.glob("*.jpg"))) == 1 for f in files)


def subject_of(boxes: list[Box], width: int, height: int) -> int | None:
    cx, cy = width / 2, height / 2
    holding = [i for i, b in enumerate(boxes) if b.left <= cx < b.right and b.top <= cy < b.bottom]
    if not holding:
        return None
    return min(holding, key=lambda i: abs((boxes[i].left + boxes[i].right) / 2 - cx) + abs((boxes[i].top + boxes[i].bottom) / 2 - cy))


def reframe(boxes: list[Box], subject: int, width: int, height: int, rng: random.Random) -> tuple[list[Box], int, tuple[int, int]] | None:
    s = boxes[subject]
    side = rng.uniform(0.5, 1.0) * min(width, height)
    aspect = rng.uniform(0.75, 4 / 3)
    w, h = min(width, side * aspect**0.5), min(height, side / aspect**0.5)
    w, h = max(w, s.width), max(h, s.height)
    lo_x, hi_x = max(0.0, s.right - w), min(s.left, width - w)
    lo_y, hi_y = max(0.0, s.bottom - h), min(s.top, height - h)
    if hi_x < lo_x or hi_y < lo_y:
        return None
    x0, y0 = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
    x1, y1 = x0 + w, y0 + h
    kept, index = [], -1
    for i, b in enumerate(boxes):
        cx, cy = (b.left + b.right) / 2, (b.top + b.bottom) / 2
        if not (x0 <= cx < x1 and y0 <= cy < y1):
            continue
        if i == subject:
            index = len(kept)
        kept.append(Box(round(max(b.left, x0) - x0), round(max(b.top, y0) - y0), round(min(b.right, x1) - x0), round(min(b.bottom, y1) - y0)))
    return kept, index, (round(w), round(h))


def decide(boxes: list[Box], size: tuple[int, int] | None, ratio: float) -> int | None:
    scores = [prominence(b, size) for b in boxes]
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    if len(order) > 1 and scores[order[0]] < ratio * scores[order[1]]:
        return None
    return order[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("lfw", type=Path)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--max-wrong", type=float, default=0.002)
    parser.add_argument("--refusal-budget", type=float, default=0.001)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    engine = FaceEngine(EngineOptions(threads=1))
    rng = random.Random(args.seed)
    cases: list[tuple[list[Box], int, tuple[int, int]]] = []
    originals: list[tuple[list[Box], int, tuple[int, int]]] = []
    paths = single_photo_images(args.lfw)
    no_subject = 0
    for path in paths:
        image, _ = read_image_file(path)
        height, width = image.shape[:2]
        boxes = [d.box for d in engine.detect(image)]
        subject = subject_of(boxes, width, height)
        if subject is None:
            no_subject += 1
            continue
        originals.append((boxes, subject, (width, height)))
        for _ in range(args.frames):
            framed = reframe(boxes, subject, width, height, rng)
            if framed is not None and framed[1] >= 0:
                cases.append(framed)

    def table(rows: list[tuple[list[Box], int, tuple[int, int]]], central: bool) -> list[dict[str, float]]:
        out = []
        for ratio in RATIOS:
            refused = wrong = 0
            for boxes, subject, size in rows:
                if len(boxes) < 2:
                    continue
                pick = decide(boxes, size if central else None, ratio)
                refused += pick is None
                wrong += pick is not None and pick != subject
            out.append({"ratio": ratio, "refused": round(refused / len(rows), 4), "wrong": round(wrong / len(rows), 4)})
        return out

    reframed = table(cases, True)
    chosen = [r for r in reframed if r["wrong"] <= args.max_wrong and r["refused"] <= args.refusal_budget][-1]
    print(json.dumps({
        "images": len(paths), "no_face_at_centre": no_subject, "photos": len(originals),
        "with_bystanders": sum(len(b) > 1 for b, _, _ in originals),
        "reframed_photos": len(cases), "reframed_with_bystanders": sum(len(b) > 1 for b, _, _ in cases),
        "chosen": chosen,
        "width_x_centrality": {"reframed": reframed, "original": table(originals, True)},
        "width_only": {"reframed": table(cases, False), "original": table(originals, False)},
    }, indent=1))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
