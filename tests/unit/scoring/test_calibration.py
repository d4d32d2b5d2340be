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
from faceward.vision.recognizer import RecognizerManifest, load_manifest
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
    assert find_model_calibration(folder, manifest.sha256, flip_average=True) is None
    with pytest.raises(ConfigError, match="faceward models calibrate"):
        lookup(manifest.model_id + "/flip", manifest)
    provenance = manifest.provenance()
    assert model_card(manifest.model_id, provenance, manifest)["calibrated"] is False

    plain, flip = table(), Calibration.from_scores("m/flip", np.linspace(0.5, 1, 50), np.linspace(-0.2, 0.6, 20_000))
    path = write_model_calibration(folder, manifest.sha256, {False: plain, True: flip})
    assert path == model_table_path(folder, manifest.sha256) == folder / f"calibration-{manifest.sha256}.json"
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
        find_model_calibration(folder, manifest.sha256, flip_average=True)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable calibration table"):
        find_model_calibration(folder, manifest.sha256, flip_average=True)
