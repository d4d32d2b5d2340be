from __future__ import annotations

import numpy as np

from faceward.scoring import Calibration, Decision, fpir_threshold_fmr


def table() -> Calibration:
    rng = np.random.default_rng(1)
    return Calibration.from_scores("m", rng.normal(0.8, 0.05, 5000), rng.normal(0.2, 0.1, 100_000))


def test_fmr_falls_with_score_and_is_floored() -> None:
    cal = table()
    assert cal.estimated_fmr(0.2) > 0.4 > cal.estimated_fmr(0.4) > cal.estimated_fmr(0.5)
    assert cal.estimated_fmr(0.99) == cal.fmr_floor == 1e-5


def test_threshold_meets_target_on_its_own_data() -> None:
    cal = table()
    for target in (1e-2, 1e-3, 1e-4):
        t = cal.threshold(target)
        assert cal.estimated_fmr(t) <= target * 1.01
        assert cal.estimated_fmr(t - 0.01) > target * 0.5
    assert cal.decide(cal.threshold(1e-3) + 1e-6, 1e-3) is Decision.LEAD
    assert cal.decide(0.1, 1e-3) is Decision.BELOW_THRESHOLD


def test_json_round_trip() -> None:
    cal = table()
    again = Calibration.from_json(cal.to_json())
    assert again.threshold(1e-3) == cal.threshold(1e-3) and again.impostor_pairs == 100_000


def test_gallery_size_lowers_the_per_comparison_fmr() -> None:
    assert abs(fpir_threshold_fmr(0.01, 1) - 0.01) < 1e-12
    assert fpir_threshold_fmr(0.01, 1000) < 1.01e-5
    assert fpir_threshold_fmr(0.01, 1_000_000) < fpir_threshold_fmr(0.01, 1000)
