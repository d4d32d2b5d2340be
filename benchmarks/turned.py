"""Photos not upright with no EXIF orientation: how often the engine turns them upright, and at what cost.

Every ``--step``-th lfw-dev photo is analysed as sent, turned a quarter turn either way and turned
upside down (no EXIF, as a scanner or an app that re-saves writes them). For each it reports how many
the engine finds upright, how many it turns the wrong way, and how many it leaves as sent; the
baseline, in the same run, is the engine without the turn check (which finds none upright: YuNet
places its points as if every face were upright, so a turned face it does find cannot be aligned).
Then the cost the check adds where it runs for nothing: a 12 MP photo of texture with no face, read
as an upload is, against the same engine without the check (median of ``--rounds``; a ratio, as the
host is noisy).

    python benchmarks/turned.py ../shared/datasets/lfw-dev --json-out docs/benchmarks/turned-2026-12-01.json
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import faceward.vision.detect as detect  # noqa: E402
from faceward.vision.engine import EngineOptions, FaceEngine  # noqa: E402
from faceward.vision.orientation import turned  # noqa: E402


def orientation_counts(detector: detect.YuNetDetector, photos: list[Path], sent: int) -> dict[str, int]:
    """Photos sent turned by ``sent`` counter-clockwise quarter turns: found upright, turned wrong, left as sent."""
    upright = wrong = left = 0
    for path in photos:
        image = turned(np.asarray(Image.open(path).convert("RGB")), sent)
        best = max((d.score for d in detector.detect(image)), default=0.0)
        quarters = detector.upright_turn(image, best)
        if (quarters + sent) % 4 == 0:
            upright += 1
        elif quarters:
            wrong += 1
        else:
            left += 1
    return {"found_upright": upright, "turned_wrong": wrong, "left_as_sent": left}


def read_ms(engine: FaceEngine, data: bytes, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        engine.read(data)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lfw", type=Path)
    parser.add_argument("--step", type=int, default=5, help="every n-th photo, in name order")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    photos = sorted((args.lfw / "images").glob("*/*.jpg"))[:: args.step]
    detector = detect.YuNetDetector(threads=1)
    found: dict[str, Any] = {}
    for sent, name in ((0, "as_sent"), (1, "turned_90_ccw"), (3, "turned_90_cw"), (2, "upside_down")):
        found[name] = orientation_counts(detector, photos, sent)

    rng = np.random.default_rng(0)
    texture = Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).resize((4032, 3024), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    texture.save(buffer, format="JPEG", quality=90)
    engine = FaceEngine(EngineOptions(threads=1))
    engine.read(buffer.getvalue())  # load the models before timing
    below = detect.TURN_BELOW
    cost = {}
    for label, threshold in (("without_check", 0.0), ("with_check", below)):
        detect.TURN_BELOW = threshold
        cost[label] = round(read_ms(engine, buffer.getvalue(), args.rounds), 1)
    detect.TURN_BELOW = below
    cost["ratio"] = round(cost["with_check"] / cost["without_check"], 2)

    print(f"{len(photos)} lfw-dev photos (every {args.step}th); baseline without the check: 0 found upright when turned")
    print(f"{'sent':<16}{'found upright':>15}{'turned wrong':>14}{'left as sent':>14}")
    for name, counts in found.items():
        print(f"{name:<16}{counts['found_upright']:>15}{counts['turned_wrong']:>14}{counts['left_as_sent']:>14}")
    print(f"12 MP texture, no face: {cost['with_check']} ms with the check, {cost['without_check']} ms without "
          f"({cost['ratio']}x)")
    report = {"photos": len(photos), "step": args.step, "turn_below": below,
              "turn_at_least": detect.TURN_AT_LEAST, "orientation": found, "no_face_12mp_cost_ms": cost}
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
