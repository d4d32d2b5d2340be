from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceward.errors import ConfigError
from faceward.scoring import (
    Calibration,
    Decision,
    find_model_calibration,
    fpir_threshold_fmr,
    lookup,
    model_card,
    model_table_path,
    write_model_calibration,
)
from faceward.vision.manifest import RecognizerManifest, load_manifest
from tests.unit.vision.tiny_recognizer import write_recognizer


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


# -- tables measured for a model of one's own ---------------------------------------------


def _manifest(tmp_path: Path) -> RecognizerManifest:
    return load_manifest(write_recognizer(tmp_path / "model"))


def test_a_model_table_lies_beside_its_manifest_named_by_sha(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    assert manifest.source is not None
    folder = manifest.source.parent
    align = manifest.alignment_sha256
    assert find_model_calibration(folder, manifest.sha256, flip_average=True, alignment=align) is None
    with pytest.raises(ConfigError, match="faceward models calibrate"):
        lookup(manifest.model_id + "/flip", manifest)
    provenance = manifest.provenance()
    assert model_card(manifest.model_id, provenance, manifest)["calibrated"] is False

    plain, flip = table(), Calibration.from_scores("m/flip", np.linspace(0.5, 1, 50), np.linspace(-0.2, 0.6, 20_000))
    path = write_model_calibration(folder, manifest.sha256, {False: plain, True: flip}, alignment=align)
    assert path == model_table_path(folder, manifest.sha256, align)
    assert path == folder / f"calibration-{manifest.sha256}-{align[:12]}.json"
    assert lookup(manifest.model_id + "/flip", manifest).impostor_pairs == 20_000
    assert lookup(manifest.model_id, manifest).impostor_pairs == 100_000
    card = model_card(manifest.model_id + "/flip", provenance, manifest)
    assert card["calibrated"] is True and card["calibration"]["fmr_resolution"] == 1 / 20_000
    assert card["licence"] == manifest.licence
    # The shipped table still wins for the bundled model, and no manifest means no model table.
    assert lookup("dlib-resnet-v1/flip", None).model_id == "dlib-resnet-v1/flip"

    # A file claiming another model's hash is refused rather than trusted; a garbled one says so.
    other = "0" * 64
    data = json.loads(path.read_text())
    path.write_text(json.dumps(data | {"model_sha256": other}))
    with pytest.raises(ConfigError, match="another model file"):
        find_model_calibration(folder, manifest.sha256, flip_average=True, alignment=align)
    path.write_text(json.dumps(data | {"alignment_sha256": "1" * 64}))
    with pytest.raises(ConfigError, match="aligned another way"):
        find_model_calibration(folder, manifest.sha256, flip_average=True, alignment=align)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable calibration table"):
        find_model_calibration(folder, manifest.sha256, flip_average=True, alignment=align)


def test_a_new_template_or_normalisation_finds_no_table(tmp_path: Path) -> None:
    """The same weights fed other chips give other scores: the table is content-addressed by both."""
    import dataclasses

    manifest = _manifest(tmp_path)
    assert manifest.source is not None
    write_model_calibration(manifest.source.parent, manifest.sha256, {False: table()}, alignment=manifest.alignment_sha256)
    assert lookup(manifest.model_id, manifest).impostor_pairs == 100_000
    moved = tuple((x + 1.0, y) for x, y in manifest.template)
    for changed in (dataclasses.replace(manifest, template=moved), dataclasses.replace(manifest, std=(1.0, 1.0, 1.0))):
        assert changed.alignment_sha256 != manifest.alignment_sha256 and changed.sha256 == manifest.sha256
        with pytest.raises(ConfigError, match="faceward models calibrate"):
            lookup(changed.model_id, changed)
        assert model_card(changed.model_id, changed.provenance(), changed)["calibrated"] is False


# -- the FMR's upper bound: decisions err strict where the measurement is thin -------------


def test_poisson_upper_bound_matches_the_exact_bound() -> None:
    from faceward.scoring.calibration import poisson_upper

    # Exact one-sided 95% Poisson bounds (chi-square quantiles / 2) for 0, 1, 2, 5, 10 and 100 events.
    exact = [2.9957, 4.7439, 6.2958, 10.5130, 16.9622, 118.0793]
    assert np.allclose(poisson_upper(np.array([0, 1, 2, 5, 10, 100])), exact, rtol=0.02)


def _clustered_world(look_alike: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-identity exceedance counts of 400 singleton identities at one threshold; one look-alike holds
    half of all false matches when ``look_alike``."""
    from faceward.scoring.calibration import fmr_upper_bound

    n = 400
    pairs = np.full(n, n - 1)
    counts = np.zeros((n, 1), dtype=np.int64)
    hits = 80  # 80 false matches among 79,800 pairs: FMR 1.0e-3
    if look_alike:
        counts[0, 0] = hits // 2  # the look-alike is a member of half of them
        counts[1 : 1 + hits // 2, 0] = 1
        counts[1 + hits // 2 : 1 + hits // 2 + hits, 0] = 1  # the other half, between two ordinary people each
    else:
        counts[: 2 * hits, 0] = 1
    assert counts.sum() == 2 * hits
    return counts, pairs, float(fmr_upper_bound(counts, pairs)[0])


def test_the_upper_bound_widens_when_false_matches_cluster_on_few_people() -> None:
    _, pairs, independent = _clustered_world(look_alike=False)
    _, _, clustered = _clustered_world(look_alike=True)
    fmr = 80 / (pairs.sum() / 2)
    assert fmr < independent < 1.3 * fmr  # about the binomial bound: 80 independent events
    assert clustered > 1.5 * independent  # the same 80 events are worth fewer when one person holds half


def test_a_table_with_an_upper_bound_decides_on_the_bound(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    impostor, genuine = rng.normal(0.2, 0.1, 50_000), rng.normal(0.8, 0.05, 500)
    plain = Calibration.from_scores("m", genuine, impostor)
    upper = plain.fmr * 1.5 + 3 / 50_000  # any bound at or above the point estimate
    bounded = Calibration.from_scores("m", genuine, impostor, fmr_upper=upper)
    assert bounded.threshold(1e-3) > plain.threshold(1e-3)
    assert bounded.fmr_upper_at(bounded.threshold(1e-3)) <= 1e-3
    assert bounded.estimated_fmr(0.3) == plain.estimated_fmr(0.3)  # the reported FMR stays the measured one
    assert np.all(np.diff(bounded.fmr_upper) <= 0)  # a bound never rises with the score
    again = Calibration.from_json(json.loads(json.dumps(bounded.to_json())))
    assert again.threshold(1e-3) == bounded.threshold(1e-3) and again.fmr_upper is not None
    assert Calibration.from_json(plain.to_json()).fmr_upper is None  # three columns: the bundled tables
