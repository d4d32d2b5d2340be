"""The calibration protocol shared by scripts/calibrate.py and ``faceward models calibrate``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceward.errors import InvalidInput
from faceward.evaluation.calibration import (
    MAX_IMAGES,
    PairScores,
    calibration_identities,
    check_enough,
    check_images,
    pair_scores,
)
from faceward.evaluation.runs import ImageAnalysis, Variant
from faceward.vision.pipeline import FileFace

PLAIN = Variant("m", flip_average=False, mmod_fallback=True)


def analysis(vector: np.ndarray, *, detected: bool = True) -> ImageAnalysis:
    face = FileFace({}, "hog" if detected else "centre", 1.0, {}, vector.astype(np.float32), vector.astype(np.float32))
    return ImageAnalysis(face, hog_found=detected)


def test_every_pair_is_scored_and_undetected_faces_are_left_out() -> None:
    rng = np.random.default_rng(3)
    identities = {f"id{i}": [Path(f"id{i}/{j}.jpg") for j in range(n)] for i, n in enumerate((3, 2, 1))}
    analyses = {p: analysis(rng.standard_normal(8)) for files in identities.values() for p in files}
    analyses[Path("id1/1.jpg")] = analysis(rng.standard_normal(8), detected=False)  # a centre stand-in, not a face
    scores = pair_scores(identities, analyses, PLAIN)
    # 5 detected faces: id0 has 3 (3 genuine pairs), id1 one, id2 one; 10 pairs in all.
    assert (scores.images, scores.identities) == (5, 3)
    assert len(scores.genuine) == 3 and len(scores.impostor) == 7
    assert np.all(np.abs(scores.impostor) <= 1.0 + 1e-6)


def test_too_little_data_is_refused_with_the_reason() -> None:
    enough = PairScores(np.zeros(20), np.zeros(10_000), 20, 150)
    check_enough(enough)
    for scores, reason in (
        (PairScores(np.zeros(20), np.zeros(10_000), 19, 150), "19 identities; calibration needs at least 20"),
        (PairScores(np.zeros(19), np.zeros(10_000), 20, 150), "19 genuine pairs"),
        (PairScores(np.zeros(20), np.zeros(9_999), 20, 150), "9,999 impostor pairs resolve a false match rate only to 1.0e-04"),
    ):
        with pytest.raises(InvalidInput, match=reason):
            check_enough(scores)
    check_images(MAX_IMAGES)
    with pytest.raises(InvalidInput, match="at most"):
        check_images(MAX_IMAGES + 1)


def test_identities_named_in_pairs_csv_are_held_out(tmp_path: Path) -> None:
    for name in ("Ann", "Bob", "Cy"):
        (tmp_path / "images" / name).mkdir(parents=True)
        (tmp_path / "images" / name / "1.jpg").write_bytes(b"x")
    kept, held_out = calibration_identities(tmp_path)
    assert sorted(kept) == ["Ann", "Bob", "Cy"] and held_out == 0
    (tmp_path / "pairs.csv").write_text("image_a,image_b,same\nAnn/1.jpg,Bob/1.jpg,0\n")
    kept, held_out = calibration_identities(tmp_path)
    assert sorted(kept) == ["Cy"] and held_out == 2


def test_pair_scores_count_each_identitys_impostor_pairs_for_the_upper_bound() -> None:
    from faceward.scoring.calibration import GRID

    rng = np.random.default_rng(5)
    identities = {f"id{i}": [Path(f"id{i}/{j}.jpg") for j in range(n)] for i, n in enumerate((3, 2, 1, 1))}
    analyses = {p: analysis(rng.standard_normal(8)) for files in identities.values() for p in files}
    scores = pair_scores(identities, analyses, PLAIN)
    assert scores.cluster_counts is not None and scores.cluster_pairs is not None
    # 7 images: id0's 3 each meet 4 others, id1's 2 each meet 5, the singletons 6 each.
    assert scores.cluster_pairs.tolist() == [12, 10, 6, 6]
    assert scores.cluster_pairs.sum() == 2 * len(scores.impostor)
    at = np.searchsorted(GRID, 0.0)
    assert scores.cluster_counts[:, at].sum() == 2 * int((scores.impostor >= GRID[at]).sum())
    upper = scores.fmr_upper()
    assert upper is not None and upper.shape == GRID.shape
    fmr = 1.0 - np.searchsorted(np.sort(scores.impostor), GRID, side="left") / len(scores.impostor)
    assert np.all(upper >= fmr - 1e-12)


def test_the_held_out_check_states_its_resolution_and_how_surprising_its_count_is() -> None:
    from faceward.evaluation.reports import held_out_check
    from faceward.scoring import Calibration

    rng = np.random.default_rng(6)
    table = Calibration.from_scores("m", rng.normal(0.8, 0.05, 500), rng.normal(0.2, 0.1, 200_000))
    threshold = table.threshold(1e-3)
    scores = np.concatenate([np.full(1329, threshold - 0.2), np.full(3, threshold + 0.01), np.full(10, 0.9)])
    same = np.concatenate([np.zeros(1332, bool), np.ones(10, bool)])
    row = {r["target_fmr"]: r for r in held_out_check(scores, same, table)}[1e-3]
    assert (row["impostor_pairs"], row["false_matches"], row["observed_fmr"]) == (1332, 3, round(3 / 1332, 6))
    assert row["resolution"] == round(1 / 1332, 6) and row["expected_false_matches"] == 1.33
    # P(X >= 3) for a Poisson mean of 1.332: 1 - e^-1.332 (1 + 1.332 + 1.332^2 / 2) = 0.150
    assert abs(row["chance_of_at_least_as_many"] - 0.150) < 0.002 and row["tar"] == 1.0
