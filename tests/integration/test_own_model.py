"""A recognizer of your own, first class: MobileFaceNet calibrated by faceward on a small lfw-dev sample.

The model is read from ``../shared/models/mobilefacenet/`` through the repository's
manifest (``benchmarks/models/mobilefacenet.json``), never copied; the manifest is
written into a temporary folder with the model's absolute path, so the calibration
table lands there and not in the repository. ``benchmarks/own_model.py`` measures
the same on all of lfw-dev.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceward.api.app import create_app
from faceward.evaluation.calibration import MIN_IMPOSTOR_PAIRS, calibration_identities
from faceward.evaluation.datasets import read_pairs
from faceward.security.permissions import Role
from faceward.vision.manifest import load_manifest
from tests.conftest import own_model_manifest
from tests.integration.api.apiworld import GENEROUS, Api, make_settings, make_tenant

FORM = {"purpose": "identify a witness for case review", "case_reference": "CASE-2026-0042"}


def run(*args: str) -> tuple[int, str]:
    from faceward.cli.main import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return own_model_manifest(tmp_path_factory.mktemp("own-model"))


@pytest.fixture(scope="module")
def sample(lfw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 200 images of lfw-dev identities outside pairs.csv: 30 with several images, 110 with one."""
    identities, _ = calibration_identities(lfw_dir)
    several = [name for name, files in identities.items() if len(files) >= 2][:30]
    single = [name for name, files in identities.items() if len(files) == 1][:110]
    folder = tmp_path_factory.mktemp("calibration-sample")
    for name in several + single:
        (folder / name).mkdir()
        for image in identities[name][:3]:
            (folder / name / image.name).symlink_to(image)
    return folder


@pytest.fixture(scope="module")
def calibrated(manifest: Path, sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACEWARD_HOME", str(tmp_path_factory.mktemp("home")))
        code, output = run("models", "calibrate", str(manifest), str(sample), "--workers", "1", "--engine", "onnx", "--json")
    assert code == 0, output
    yield json.loads(output)


def test_calibrate_writes_a_table_beside_the_manifest(calibrated: dict, manifest: Path) -> None:
    model = load_manifest(manifest)
    name = f"calibration-{model.sha256}-{model.alignment_sha256[:12]}.json"  # the weights and how chips are cut
    assert calibrated["table"] == str(manifest.parent / name)
    assert calibrated["template_id"] == model.model_id + "/flip"  # the manifest turns mirror-averaging on
    assert calibrated["impostor_pairs"] >= MIN_IMPOSTOR_PAIRS and calibrated["genuine_pairs"] >= 20
    assert calibrated["fmr_resolution"] == pytest.approx(1 / calibrated["impostor_pairs"])
    scores = [row["score"] for row in calibrated["thresholds"]]
    assert scores == sorted(scores) and 0.0 < scores[0] < 1.0  # a stricter target, a higher score
    for row in calibrated["thresholds"][:2]:  # placed where the FMR's 95% upper bound meets the target
        assert row["fmr"] <= row["fmr_upper_95"] <= row["target_fmr"]
    assert calibrated["flip_average"] is True and calibrated["by_flip_average"]["true"] == calibrated["thresholds"]
    assert len(calibrated["by_flip_average"]["false"]) == len(scores)
    code, output = run("models", "show", str(manifest), "--json")
    card = json.loads(output)
    assert code == 0 and card["calibrated"] is True and card["licence"].startswith("MIT as stated")
    assert "research-only" in card["training_data"]


def test_too_few_identities_are_refused_with_the_reason(manifest: Path, sample: Path, tmp_path: Path) -> None:
    few = tmp_path / "few"
    for person in sorted(sample.iterdir())[:5]:
        (few / person.name).mkdir(parents=True)
    (few / "x").mkdir()
    (few / "x" / "a.jpg").symlink_to(next(next(sample.iterdir()).iterdir()))
    code, output = run("models", "calibrate", str(manifest), str(few))
    assert code == 2 and "holds 1 identities" in output and "needs at least 20" in output


def test_api_search_with_the_calibrated_model(calibrated: dict, manifest: Path, sample: Path, tmp_path: Path) -> None:
    person = next(p for p in sorted(sample.iterdir()) if len(list(p.iterdir())) >= 2)
    enrolled, probe = sorted(person.iterdir())[:2]
    settings = make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'fw.db'}", recognizer_manifest=manifest,
                             engine="onnx", max_image_bytes=1024 * 1024)
    app = create_app(settings, limits=GENEROUS)
    api = Api(app)
    try:
        tenant = make_tenant(app.state.services, "Own Model Org")
        subject = api.post("/v1/subjects", headers=tenant.auth(Role.ENROLLER), json={
            "display_name": person.name, "consent": {"basis": "explicit_consent", "reference": "FORM-1",
                                                     "given_at": "2026-01-02T03:04:05Z"},
        }).json()
        face = api.post(f"/v1/subjects/{subject['id']}/faces", headers=tenant.auth(Role.ENROLLER),
                        files={"image": ("a.jpg", enrolled.read_bytes(), "image/jpeg")})
        assert face.status_code == 201, face.text
        found = api.post("/v1/search", headers=tenant.auth(Role.SEARCHER), data=FORM,
                         files={"image": ("probe.jpg", probe.read_bytes(), "image/jpeg")})
        assert found.status_code == 200, found.text
        result = found.json()
        assert result["calibrated"] is True and result["model_id"] == load_manifest(manifest).model_id + "/flip"
        [top] = result["candidates"]
        assert top["subject_id"] == subject["id"] and top["estimated_fmr"] is not None
        assert top["estimated_fmr"] >= result["threshold"]["fmr_resolution"] == calibrated["fmr_resolution"]
        assert not any("uncalibrated" in w for w in result["warnings"])

        shown = api.get("/v1/tenant/settings", headers=tenant.auth(Role.ADMIN))
        assert shown.status_code == 200, shown.text
        model = shown.json()["model"]
        assert model["calibrated"] is True and model["licence"].startswith("MIT as stated")
        assert model["gallery_model_id"] == result["model_id"]
        assert model["gallery_model_sha256"] == model["sha256"] == load_manifest(manifest).sha256
        stored = app.state.services.gallery.store.faces_of(tenant.id, subject["id"])
        assert [f.model_sha256 for f in stored] == [model["sha256"]]  # the full hash, per template
        assert model["calibration"]["impostor_pairs"] == calibrated["impostor_pairs"]
    finally:
        api.close()
        app.state.services.gallery.store.close()


def test_eval_pairs_with_the_model_checks_its_calibration(
    calibrated: dict, manifest: Path, lfw_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = read_pairs(lfw_dir)
    chosen = [p for p in pairs if p.same][:15] + [p for p in pairs if not p.same][:15]
    folder = tmp_path / "pairs"
    for pair in chosen:
        for name in (pair.a, pair.b):
            target = folder / "images" / name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(lfw_dir / "images" / name)
    rows = ["image_a,image_b,same"] + [f"{p.a},{p.b},{int(p.same)}" for p in chosen]
    (folder / "pairs.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.setenv("FACEWARD_HOME", str(tmp_path / "home"))
    code, output = run("eval", "pairs", str(folder), "--model", str(manifest), "--workers", "1", "--engine", "onnx", "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report["variant"] == load_manifest(manifest).model_id + "/flip" and report["accuracy"] >= 0.8
    check = {row["target_fmr"]: row for row in report["calibration_check"]}
    assert check[1e-3]["impostor_pairs"] == 15 and check[1e-3]["threshold"] >= check[1e-2]["threshold"]
    assert check[1e-3]["resolution"] == round(1 / 15, 6) and check[1e-3]["expected_false_matches"] == 0.01
    assert (check[1e-3]["chance_of_at_least_as_many"] == 1.0) == (check[1e-3]["false_matches"] == 0)
    # ... and on every cross-identity pair of those images: far more impostors, the same thresholds.
    every = {row["target_fmr"]: row for row in report["calibration_check_every_impostor"]}
    assert every[1e-3]["threshold"] == check[1e-3]["threshold"] and every[1e-3]["impostor_pairs"] > 15 * 20
    assert every[1e-2]["false_matches"] >= every[1e-3]["false_matches"] >= check[1e-3]["false_matches"]
