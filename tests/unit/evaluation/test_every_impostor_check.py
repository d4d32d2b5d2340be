"""The held-out check on every cross-identity pair of an evaluation's images, scored in blocks."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from faceward.evaluation.datasets import Pair
from faceward.evaluation.reports import HELD_OUT_TARGETS, every_impostor_check
from faceward.evaluation.runs import ImageAnalysis, Variant
from faceward.vision.pipeline import FileFace

PLAIN = Variant("m", flip_average=False, mmod_fallback=False)


class Thresholds:
    """A calibration's one question here: the score that meets each target FMR."""

    def threshold(self, target: float) -> float:
        return {1e-2: 0.2, 1e-3: 0.6}[target]


def analysis(vector: np.ndarray) -> ImageAnalysis:
    v = (vector / np.linalg.norm(vector)).astype(np.float32)
    return ImageAnalysis(FileFace({}, "yunet", 1.0, {}, v, v), hog_found=True)


@pytest.mark.parametrize("block", [1, 3, 1024])
def test_counts_every_cross_identity_pair_once_whatever_the_block(block: int) -> None:
    rng = np.random.default_rng(7)
    names = [f"{who}/{who}_{i:04d}.jpg" for who, count in (("A", 3), ("B", 2), ("C", 1), ("D", 2)) for i in range(1, count + 1)]
    images = Path("/images")
    analyses = {images / n: analysis(rng.standard_normal(4)) for n in names}
    # Listed pairs use every image; which pairs are listed does not matter to this check.
    pairs = [Pair(a, b, a.split("/")[0] == b.split("/")[0]) for a, b in zip(names, names[1:])]
    rows = {r["target_fmr"]: r for r in every_impostor_check(pairs, images, analyses, PLAIN, Thresholds(), block=block)}
    impostors = [(a, b) for a, b in combinations(names, 2) if a.split("/")[0] != b.split("/")[0]]
    assert set(rows) == set(HELD_OUT_TARGETS)
    for target, threshold in ((1e-2, 0.2), (1e-3, 0.6)):
        expected = sum(
            float(PLAIN.descriptor(analyses[images / a]) @ PLAIN.descriptor(analyses[images / b])) >= threshold
            for a, b in impostors
        )
        assert rows[target]["impostor_pairs"] == len(impostors) == 23
        assert rows[target]["false_matches"] == expected
        assert rows[target]["ratio_to_target"] == round(expected / len(impostors) / target, 3)


def test_too_few_images_give_no_rows() -> None:
    images = Path("/images")
    one = {images / "A/A_0001.jpg": analysis(np.ones(4))}
    assert every_impostor_check([Pair("A/A_0001.jpg", "A/A_0001.jpg", True)], images, one, PLAIN, Thresholds()) == []


def test_a_folder_over_the_cap_says_it_was_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    import faceward.evaluation.reports as reports
    from faceward.evaluation.runs import ImageAnalysis

    monkeypatch.setattr(reports, "MAX_EVERY_IMPOSTOR_IMAGES", 3)
    images = Path("/images")
    names = [f"{who}/{who}_0001.jpg" for who in "ABCDEFGHIJKL"]
    analyses: dict[Path, ImageAnalysis] = {images / n: analysis(np.eye(4)[i % 4] + 0.1) for i, n in enumerate(names)}
    pairs = [Pair(a, b, False) for a, b in zip(names[::2], names[1::2])] + [Pair(n, n, True) for n in names[:6]]
    report = reports.pairs_report(pairs, images, analyses, PLAIN, Thresholds())  # type: ignore[arg-type]
    assert "over 3" in report["calibration_check_every_impostor"][0]["skipped"]
