"""Score-level fusion of the bundled ResNet and a model of one's own: one template, a weighted sum of two scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceward.settings import Engine
from faceward.vision.engine import EngineOptions, FaceEngine
from faceward.vision.errors import ManifestError
from faceward.vision.manifest import load_manifest
from tests.unit.vision.tiny_recognizer import DIM, SIZE, write_recognizer

FUSION = {"with": "dlib-resnet-v1", "weight": 0.3}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fusion")
    write_recognizer(folder)
    write_recognizer(folder, name="tiny-fused", fusion=FUSION)
    return folder


def _engines(folder: Path) -> tuple[FaceEngine, FaceEngine, FaceEngine]:
    options = EngineOptions(engine=Engine.ONNX, threads=1, flip_average=False)
    own = FaceEngine(EngineOptions(engine=Engine.ONNX, threads=1, flip_average=False, recognizer=str(folder / "tiny-proj.json")))
    fused = FaceEngine(EngineOptions(engine=Engine.ONNX, threads=1, flip_average=False, recognizer=str(folder / "tiny-fused.json")))
    return fused, own, FaceEngine(options)


def test_a_fused_manifest_names_another_model_and_table(folder: Path) -> None:
    own, fused = load_manifest(folder / "tiny-proj.json"), load_manifest(folder / "tiny-fused.json")
    assert fused.fusion_weight == 0.3 and own.fusion_weight is None
    assert fused.model_id == own.model_id.replace("tiny-proj", "tiny-fused") + "+d30"
    assert len("x" * 28 + "-" + "y" * 12 + "-" + "0" * 12 + "+d30/flip") <= 64  # the store's model_id column
    assert fused.template_size == DIM + 128 and own.template_size == DIM
    # The same weights fused give other scores: their calibration table is another file.
    assert fused.alignment_spec()["fusion"] == FUSION and "fusion" not in own.alignment_spec()
    # Its provenance names the bundled half and that half's licence.
    assert fused.provenance()["fused_with"].startswith("dlib-resnet-v1 at weight 0.3 (licence: CC0")
    assert "fused_with" not in own.provenance()


def test_a_fused_template_records_both_weights_and_the_share(folder: Path) -> None:
    """A fused template changes with either file or the weight: what it records names all three."""
    import dataclasses
    import hashlib

    from faceward.services.analysis import Analysis
    from faceward.settings import Settings
    from faceward.vision.fusion import templates_sha256
    from faceward.vision.models import MANIFEST, ModelName

    own, fused = load_manifest(folder / "tiny-proj.json"), load_manifest(folder / "tiny-fused.json")
    dlib = MANIFEST[ModelName.DESCRIPTOR].sha256
    assert templates_sha256(own) == own.sha256
    assert templates_sha256(fused) == hashlib.sha256(f"{fused.sha256}+{dlib}@0.3".encode()).hexdigest()
    assert templates_sha256(dataclasses.replace(fused, fusion_weight=0.4)) not in (templates_sha256(fused), fused.sha256)
    engine = FaceEngine(EngineOptions(engine=Engine.ONNX, threads=1, recognizer=str(folder / "tiny-fused.json")))
    assert Analysis(Settings(), engine).model_sha256 == templates_sha256(fused)


@pytest.mark.parametrize(
    ("fusion", "message"),
    [
        ({"with": "arcface", "weight": 0.5}, "must be"),
        ({"with": "dlib-resnet-v1"}, "must be"),
        ({"with": "dlib-resnet-v1", "weight": 0.5, "extra": 1}, "must be"),
        ("dlib", "must be"),
        ({"with": "dlib-resnet-v1", "weight": 0}, "between 0 and 1"),
        ({"with": "dlib-resnet-v1", "weight": 1.0}, "between 0 and 1"),
        ({"with": "dlib-resnet-v1", "weight": "half"}, "fusion weight"),
        ({"with": "dlib-resnet-v1", "weight": float("nan")}, "finite"),
    ],
)
def test_bad_fusion_specs_are_refused(tmp_path: Path, fusion: object, message: str) -> None:
    path = write_recognizer(tmp_path)
    data = json.loads(path.read_text())
    path.write_text(json.dumps(data | {"fusion": fusion}))
    with pytest.raises(ManifestError, match=message):
        load_manifest(path)


def test_an_odd_input_width_cannot_be_stacked(tmp_path: Path) -> None:
    path = write_recognizer(tmp_path)
    data = json.loads(path.read_text())
    path.write_text(json.dumps(data | {"fusion": FUSION, "input_size": [SIZE + 1, SIZE]}))
    with pytest.raises(ManifestError, match="even input width"):
        load_manifest(path)


def test_the_fused_score_is_the_weighted_sum_of_the_two_models_scores(folder: Path, astronaut: np.ndarray) -> None:
    fused, own, bundled = _engines(folder)
    assert fused.embedding_size == DIM + 128 and fused.template_id.endswith("+d30")
    mirrored = np.ascontiguousarray(astronaut[:, ::-1])
    faces = [engine.analyze(image)[0] for image in (astronaut, mirrored) for engine in (fused, own, bundled)]
    (f1, o1, b1), (f2, o2, b2) = faces[:3], faces[3:]
    for face in (f1, f2):
        assert face.descriptor is not None and face.descriptor.shape == (DIM + 128,)
        assert abs(float(np.linalg.norm(face.descriptor)) - 1) < 1e-5
    assert np.allclose(f1.descriptor, np.concatenate([np.sqrt(0.3) * b1.descriptor, np.sqrt(0.7) * o1.descriptor]), atol=1e-5)
    expected = 0.3 * float(b1.descriptor @ b2.descriptor) + 0.7 * float(o1.descriptor @ o2.descriptor)
    assert float(f1.descriptor @ f2.descriptor) == pytest.approx(expected, abs=1e-5)
    # A reviewer's thumbnail and the quality limits see dlib's chip, not the stack.
    assert f1.chip.shape == (150 + SIZE, 150, 3) and f1.picture.shape == (150, 150, 3)
    assert np.array_equal(f1.picture, b1.chip) and f1.quality == b1.quality


def test_mirroring_the_stack_mirrors_each_chip(folder: Path, astronaut: np.ndarray) -> None:
    fused, own, bundled = _engines(folder)
    [face] = fused.analyze(astronaut)
    runtime = fused.embedder.runtime
    mirrored = runtime.compute(np.ascontiguousarray(face.chip[None, :, ::-1]))[0]
    [plain] = bundled.analyze(astronaut)
    [mine] = own.analyze(astronaut)
    dlib_part = bundled.embedder.runtime.compute(np.ascontiguousarray(plain.chip[None, :, ::-1]))[0]
    own_part = own.embedder.runtime.compute(np.ascontiguousarray(mine.chip[None, :, ::-1]))[0]
    expected = np.concatenate([np.sqrt(0.3) * dlib_part / np.linalg.norm(dlib_part),
                               np.sqrt(0.7) * own_part / np.linalg.norm(own_part)])
    assert np.allclose(mirrored, expected, atol=1e-5)
    with pytest.raises(ValueError, match="stacked chips"):
        runtime.compute(np.zeros((1, 150, 150, 3), dtype=np.uint8))


def test_a_fused_model_serves_the_api_and_shows_what_it_is_fused_with(folder: Path, tmp_path: Path, astronaut: np.ndarray) -> None:
    import io

    from PIL import Image

    from faceward.api.app import create_app
    from faceward.security.permissions import Role
    from tests.integration.api.apiworld import GENEROUS, Api, make_settings, make_tenant

    settings = make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'fw.db'}", recognizer_manifest=folder / "tiny-fused.json",
                             engine="onnx")
    app = create_app(settings, limits=GENEROUS)
    api = Api(app)
    buffer = io.BytesIO()
    Image.fromarray(astronaut).save(buffer, format="JPEG", quality=92)
    photo = {"image": ("a.jpg", buffer.getvalue(), "image/jpeg")}
    try:
        tenant = make_tenant(app.state.services, "Fused Org")
        subject = api.post("/v1/subjects", headers=tenant.auth(Role.ENROLLER), json={
            "display_name": "Eileen Collins", "consent": {"basis": "explicit_consent", "reference": "FORM-7",
                                                          "given_at": "2026-01-02T03:04:05Z"},
        }).json()
        enrolled = api.post(f"/v1/subjects/{subject['id']}/faces", headers=tenant.auth(Role.ENROLLER), files=photo)
        assert enrolled.status_code == 201, enrolled.text
        found = api.post("/v1/search", headers=tenant.auth(Role.SEARCHER), files=photo,
                         data={"purpose": "test the fused model", "case_reference": "CASE-1"})
        assert found.status_code == 200, found.text
        result = found.json()
        assert result["model_id"] == load_manifest(folder / "tiny-fused.json").model_id + "/flip"  # the settings flip
        [top] = result["candidates"]
        assert top["subject_id"] == subject["id"] and top["score"] == pytest.approx(1.0, abs=1e-4)
        assert result["calibrated"] is False  # no table measured for it: flagged, never guessed
        model = api.get("/v1/tenant/settings", headers=tenant.auth(Role.ADMIN)).json()["model"]
        assert model["fused_with"].startswith("dlib-resnet-v1 at weight 0.3") and model["model_id"].endswith("+d30")
        stored = app.state.services.gallery.store.faces_of(tenant.id, subject["id"])
        assert [f.model_id for f in stored] == [result["model_id"]]
    finally:
        api.close()
        app.state.services.gallery.store.close()
