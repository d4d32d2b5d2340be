"""Fit the half turn's bound and margin (``faceward.vision.detect.HALF_TURN_BELOW``, ``HALF_TURN_MARGIN``) on lfw-dev.

For each photo of the fitting sample (every ``--step``-th from ``--offset``, in name
order; the defaults, every 10th from the second, share no photo with decision 035's fitting samples nor
with ``benchmarks/turned.py``'s every 5th), the best face's score as sent (upright) and sent upside down,
which is also the score the half turn of each gets. It prints what the rule is chosen from:

- the highest score upside down (the bound must lie above it) and the share of upright photos under
  each bound (those pay one more YuNet run);
- how far the same face upright beats it upside down (mean, sd, least; photos scoring 0.85 or more
  upside down): a margin catches the upside-down photos with a larger gap, and an upright photo turns
  only where its half turn beats it by the margin, which would be that many sd beyond the mean.

``--check-all`` then runs the engine's own check (``YuNetDetector.upright_turn``) on every lfw-dev
photo as sent and lists any it would turn (there must be none: no evaluation figure may change).

    python scripts/fit_half_turn.py ../shared/datasets/lfw-dev --check-all
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from faceward.vision.decode import read_image_file
from faceward.vision.detect import HALF_TURN_BELOW, HALF_TURN_MARGIN, TURN_BELOW, YuNetDetector
from faceward.vision.orientation import turned


def best_upright_and_upside_down(detector: YuNetDetector, path: Path) -> tuple[float, float]:
    """The best face's score as sent (upright) and sent turned upside down (0 for none)."""
    image = read_image_file(path)[0]
    upright, upside_down = (max((d.score for d in detector.detect(turned(image, q))), default=0.0) for q in (0, 2))
    return upright, upside_down


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lfw", type=Path)
    parser.add_argument("--offset", type=int, default=1)
    parser.add_argument("--step", type=int, default=10)
    parser.add_argument("--check-all", action="store_true")
    args = parser.parse_args()

    photos = sorted((args.lfw / "images").glob("*/*.jpg"))
    detector = YuNetDetector(threads=1)
    pairs = np.array([best_upright_and_upside_down(detector, p) for p in photos[args.offset :: args.step]])
    upright, upside_down = pairs[:, 0], pairs[:, 1]
    print(f"{len(pairs)} photos (every {args.step}th from #{args.offset})")
    print(f"upside down: highest {upside_down.max():.4f}; {int((upside_down >= TURN_BELOW).sum())} score {TURN_BELOW} or more")
    for bound in (0.92, 0.925, 0.93, 0.935, 0.94):
        print(f"  bound {bound}: {(upright < bound).mean():.0%} of upright photos score under it")
    seen = upside_down >= 0.85
    gap = upright[seen] - upside_down[seen]
    print(f"upright beats upside down by {gap.mean():.4f} on average, sd {gap.std():.4f}, least {gap.min():.4f}"
          f" ({int(seen.sum())} photos scoring 0.85 or more upside down)")
    checked = upside_down >= TURN_BELOW
    for margin in (0.0, 0.005, 0.01, 0.015, 0.02):
        caught = int((upright[checked] - upside_down[checked] >= margin).sum())
        print(f"  margin {margin}: catches {caught} of {int(checked.sum())}; an upright photo turns only"
              f" {(gap.mean() + margin) / gap.std():.1f} sd beyond the mean")
    if args.check_all:
        turned_photos = []
        for path in photos:
            image = read_image_file(path)[0]
            quarters = detector.upright_turn(image, detector.detect(image))
            if quarters:
                turned_photos.append(f"{path.parent.name}/{path.name} ({quarters})")
        print(f"all {len(photos)} photos as sent, bound {HALF_TURN_BELOW}, margin {HALF_TURN_MARGIN}:"
              f" {len(turned_photos)} turned {turned_photos}")


if __name__ == "__main__":
    main()
