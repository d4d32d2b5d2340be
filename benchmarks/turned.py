"""Photos not upright with no EXIF orientation: how often the engine turns them upright, and at what cost.

1. Portraits: every ``--step``-th lfw-dev photo is analysed as sent, turned a quarter turn either way
   and turned upside down (no EXIF, as a scanner or an app that re-saves writes them). For each: how
   many the engine finds upright, how many it turns the wrong way, how many it leaves as sent, under
   decision 035's rule with its addendum and, in the same run, as first decided (no half turn at 0.9
   or more, no crop).
   Without the check none is found upright: YuNet places its points as if every face were upright, so
   a turned face it does find cannot be aligned.
2. Group photos of small faces only: ``--groups`` made 12 MP photos (``benchmarks/detect.py``'s
   backdrop and held-out lfw-dev faces, 3-10 faces of 40-150 px: under 24 px on the 640-px working
   copy), decoded as an upload is and sent the same four ways; the same counts under both rules.
3. Cost: ``FaceEngine.read`` without the check, with decision 035's first rule and with the addendum's, interleaved
   (median of ``--rounds``; ratios, as the host is noisy), on a 250x250 portrait whose face scores
   between 0.9 and 0.93 (it pays the half turn), the same portrait enlarged to 12 MP, a 12 MP photo of
   texture with no face, a 12 MP group photo of small faces (it pays the crop), and with HOG (both
   portraits) and MMOD (the small one) as the detector: there YuNet runs once on every photo, and
   again as for a YuNet engine where its face scores under 0.93.

    python benchmarks/turned.py ../shared/datasets/lfw-dev --json-out docs/benchmarks/turned-035-addendum-2026-12-01.json
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import faceward.vision.detect as detect  # noqa: E402
from faceward.settings import Detector  # noqa: E402
from faceward.vision.decode import decode_reduced  # noqa: E402
from faceward.vision.engine import SMALLEST_FACE_PX, EngineOptions, FaceEngine  # noqa: E402
from faceward.vision.orientation import turned  # noqa: E402
from faceward.vision.scale import ANALYSIS_SIDE  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
import detect as made  # noqa: E402  benchmarks/detect.py: its backdrop and held-out faces

SENT = ((0, "as_sent"), (1, "turned_90_ccw"), (3, "turned_90_cw"), (2, "upside_down"))
# A portrait for the cost: its face scores 0.903 as sent (between 0.9 and 0.93: it pays the half turn).
BAND_PORTRAIT = "Martin_Boryczewski/Martin_Boryczewski_0001.jpg"


@contextmanager
def rule(name: str) -> Iterator[None]:
    """``addendum`` (decision 035 with its addendum), ``035`` (as first decided: no half turn at 0.9 or more, no crop) or ``none``."""
    saved = (detect.HALF_TURN_BELOW, detect.CROP_FACE_PX, FaceEngine._upright)
    if name in ("035", "none"):
        detect.HALF_TURN_BELOW, detect.CROP_FACE_PX = detect.TURN_BELOW, 0  # a face is never too small for the copy
    if name == "none":
        FaceEngine._upright = lambda self, image, found, reduction, copy: (0, image, found)  # type: ignore[method-assign]
    try:
        yield
    finally:
        detect.HALF_TURN_BELOW, detect.CROP_FACE_PX, FaceEngine._upright = saved  # type: ignore[method-assign]


def counts(results: list[tuple[int, int]]) -> dict[str, int]:
    """(sent, quarters taken) pairs as found upright, turned the wrong way, left as sent."""
    upright = sum((q + sent) % 4 == 0 for sent, q in results)
    wrong = sum(bool(q) and (q + sent) % 4 != 0 for sent, q in results)
    return {"found_upright": upright, "turned_wrong": wrong, "left_as_sent": len(results) - upright - wrong}


def orientation(detector: detect.YuNetDetector, images: list[tuple[np.ndarray, float]]) -> dict[str, dict[str, Any]]:
    """For each way of sending, the counts under the addendum's rule and decision 035's first (the same detections)."""
    out: dict[str, dict[str, Any]] = {}
    for sent, name in SENT:
        taken: dict[str, list[tuple[int, int]]] = {"addendum": [], "035": []}
        for pixels, reduction in images:
            image = turned(pixels, sent)
            found = detector.detect(image, smallest=SMALLEST_FACE_PX / reduction)
            for label in taken:
                with rule(label):
                    taken[label].append((sent, detector.upright_turn(image, found)))
        out[name] = counts(taken["addendum"]) | {"rule_035": counts(taken["035"])}
    return out


def small_faces_group(rng: np.random.Generator, faces: list[Path]) -> bytes:
    size = made.CANVAS if rng.random() < 0.5 else made.CANVAS[::-1]
    canvas = made.background(rng, size)
    crops: list[tuple[int, int, int]] = []
    for _ in range(int(rng.integers(3, 11))):
        side = round(float(np.exp(rng.uniform(np.log(40), np.log(150)))) / made.FACE_OF_CROP)
        x, y = int(rng.integers(0, size[0] - side)), int(rng.integers(0, size[1] - side))
        if any(not (x + side < a or b < x or y + side < c or d < y) for a, c, b, d in made.crops_boxes(crops)):
            continue
        crops.append((x, y, side))
        face = Image.open(faces[int(rng.integers(0, len(faces)))]).convert("RGB").crop((50, 50, 200, 200))
        canvas.paste(face.resize((side, side), Image.Resampling.LANCZOS), (x, y))
    return made.encode(canvas)


def upload(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def cost(cases: dict[str, tuple[FaceEngine, bytes]], rules: dict[str, tuple[str, ...]], rounds: int) -> dict[str, Any]:
    """Median ms of ``engine.read`` per case and rule, rules interleaved in every round; ratios to ``none``."""
    times: dict[tuple[str, str], list[float]] = {(c, r): [] for c in cases for r in rules[c]}
    for case, (engine, data) in cases.items():
        engine.read(data)  # models load, first-run allocations
    for _ in range(rounds):
        for case, (engine, data) in cases.items():
            for name in rules[case]:
                with rule(name):
                    started = time.perf_counter()
                    engine.read(data)
                    times[(case, name)].append(time.perf_counter() - started)
    out: dict[str, Any] = {}
    for case in cases:
        ms = {name: round(1000 * statistics.median(times[(case, name)]), 1) for name in rules[case]}
        out[case] = {"ms": ms} | {f"ratio_{r}": round(ms[r] / ms["none"], 3) for r in ms if r != "none"}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lfw", type=Path)
    parser.add_argument("--step", type=int, default=5, help="every n-th photo, in name order")
    parser.add_argument("--groups", type=int, default=30, help="made group photos of small faces only")
    parser.add_argument("--seed", type=int, default=36)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only-cost", action="store_true", help="skip the counts (1 and 2)")
    parser.add_argument("--skip-dlib", action="store_true", help="no HOG or MMOD cost (seconds a read)")
    parser.add_argument("--skip-yunet", action="store_true", help="only HOG's and MMOD's cost")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    detector = detect.YuNetDetector(threads=1)
    photos = sorted((args.lfw / "images").glob("*/*.jpg"))[:: args.step]
    rng = np.random.default_rng(args.seed)
    faces = made.held_out_faces(args.lfw)
    groups = [small_faces_group(rng, faces) for _ in range(args.groups)]
    found: dict[str, Any] = {}
    if not args.only_cost:
        found["portraits"] = orientation(detector, [(np.asarray(Image.open(p).convert("RGB")), 1.0) for p in photos])
        decoded = [decode_reduced(g, min_long_side=ANALYSIS_SIDE) for g in groups]
        found["small_face_groups"] = orientation(detector, [(d.pixels, d.reduction) for d in decoded])
        del decoded

    portrait = Image.open(args.lfw / "images" / BAND_PORTRAIT).convert("RGB")
    enlarged = Image.new("RGB", (4000, 3000), (128, 128, 128))
    enlarged.paste(portrait.resize((3000, 3000), Image.Resampling.BICUBIC), (500, 0))
    texture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8))
    texture_12mp = upload(texture.resize((4032, 3024), Image.Resampling.BICUBIC))
    yunet, hog, mmod = (FaceEngine(EngineOptions(detector=d, threads=1)) for d in (Detector.YUNET, Detector.HOG, Detector.MMOD))
    cases = {
        "portrait_250_scoring_0.903": (yunet, (args.lfw / "images" / BAND_PORTRAIT).read_bytes()),
        "same_portrait_12mp": (yunet, upload(enlarged)),
        "texture_12mp_no_face": (yunet, texture_12mp),
        "small_face_group_12mp": (yunet, groups[0]),
        "hog_portrait_250": (hog, (args.lfw / "images" / BAND_PORTRAIT).read_bytes()),
        "hog_same_portrait_12mp": (hog, upload(enlarged)),
        "mmod_portrait_250": (mmod, (args.lfw / "images" / BAND_PORTRAIT).read_bytes()),
    }
    cases = {case: c for case, c in cases.items() if not (args.skip_dlib and c[0] is not yunet)
             and not (args.skip_yunet and c[0] is yunet)}
    both: tuple[str, ...] = ("none", "035", "addendum")
    new_only: tuple[str, ...] = ("none", "addendum")
    rules = {case: (both if engine is yunet else new_only) for case, (engine, _) in cases.items()}
    spent = cost(cases, rules, args.rounds)

    if found:
        print(f"{len(photos)} lfw-dev photos (every {args.step}th), {args.groups} group photos of small faces only;"
              " without the check none turned is found upright")
        print(f"{'':<20}{'sent':<16}{'found upright':>15}{'turned wrong':>14}{'left as sent':>14}  (035: up/wrong/left)")
    for kind, table in found.items():
        for name, c in table.items():
            old = c["rule_035"]
            print(f"{kind:<20}{name:<16}{c['found_upright']:>15}{c['turned_wrong']:>14}{c['left_as_sent']:>14}"
                  f"  ({old['found_upright']}/{old['turned_wrong']}/{old['left_as_sent']})")
    for case, figures in spent.items():
        print(f"{case:<28} {figures}")
    report = {"photos": len(photos), "step": args.step, "groups": args.groups, "seed": args.seed,
              "turn_below": detect.TURN_BELOW, "turn_at_least": detect.TURN_AT_LEAST,
              "half_turn_below": detect.HALF_TURN_BELOW, "half_turn_margin": detect.HALF_TURN_MARGIN,
              "crop_face_px": detect.CROP_FACE_PX, "orientation": found, "read_cost": spent}
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
