"""Bring-your-own recognizer: the manifest, the hash check, the template alignment and the runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceward.settings import Detector, Engine
from faceward.vision.align import (
    ARCFACE_112_TEMPLATE,
    alignment_residual,
    eyes_and_nose,
    similarity_transform,
    template_chip,
    template_points,
    warp_affine,
)
from faceward.vision.engine import EngineOptions, FaceEngine
from faceward.vision.errors import ManifestError, ModelIntegrityError
from faceward.vision.manifest import ColourOrder, Layout, load_manifest
from faceward.vision.recognizer import OnnxRecognizer
from tests.unit.vision.tiny_recognizer import DIM, SIZE, THRESHOLD, write_recognizer

TEMPLATE = np.asarray(ARCFACE_112_TEMPLATE)


@pytest.fixture(scope="module")
def manifest_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_recognizer(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def engine(manifest_path: Path) -> FaceEngine:
    return FaceEngine(EngineOptions(engine=Engine.ONNX, recognizer=str(manifest_path), threads=1))


# -- the manifest -------------------------------------------------------------------


def test_manifest_loads_with_its_model_id(manifest_path: Path) -> None:
    manifest = load_manifest(manifest_path)
    sha = json.loads(manifest_path.read_text())["sha256"]
    assert manifest.path == manifest_path.parent / "tiny-proj.onnx"
    assert manifest.input_size == (SIZE, SIZE) and manifest.embedding_size == DIM
    assert manifest.colour_order is ColourOrder.RGB and manifest.layout is Layout.NCHW
    assert manifest.threshold == THRESHOLD and len(manifest.template) == 5
    assert manifest.model_id == f"tiny-proj-1-{sha[:12]}"
    assert len(manifest.model_id + "/flip") <= 64  # the store's model_id column
    assert manifest.verify() == manifest.path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sha256": "abc"}, "64 hexadecimal"),
        ({"template": [[1, 2]] * 4}, "5 \\[x, y\\] points"),
        ({"template": [[40, 50]] * 5}, "coincide"),
        ({"std": [1, 0, 1]}, "positive"),
        ({"colour_order": "YUV"}, "RGB, BGR"),
        ({"metric": "euclidean"}, "cosine"),
        ({"input_size": [112]}, "input_size"),
        ({"name": "../etc"}, "'name'"),
        ({"name": "n" * 40}, "'name'"),
        ({"threshold": 3}, "cosine score"),
        ({"extra": 1}, "unknown manifest field"),
    ],
)
def test_bad_manifests_are_refused(tmp_path: Path, manifest_path: Path, change: dict, message: str) -> None:
    data = json.loads(manifest_path.read_text()) | change
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=message):
        load_manifest(bad)


def test_missing_field_and_unreadable_manifest(tmp_path: Path, manifest_path: Path) -> None:
    data = json.loads(manifest_path.read_text())
    del data["embedding_size"]
    (tmp_path / "m.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="lacks 'embedding_size'"):
        load_manifest(tmp_path / "m.json")
    (tmp_path / "n.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not JSON"):
        load_manifest(tmp_path / "n.json")
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path / "absent.json")


def test_a_file_whose_hash_differs_is_refused(tmp_path: Path, astronaut: np.ndarray) -> None:
    path = write_recognizer(tmp_path)
    model = tmp_path / "tiny-proj.onnx"
    model.write_bytes(model.read_bytes()[:-1] + b"\x00")  # one byte changed
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        OnnxRecognizer(load_manifest(path))
    engine = FaceEngine(EngineOptions(recognizer=str(path)))
    with pytest.raises(ModelIntegrityError, match="refusing to load it"):
        engine.analyze(astronaut)
    model.unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        load_manifest(path).verify()


# -- alignment --------------------------------------------------------------------


def test_similarity_transform_recovers_a_known_one() -> None:
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = np.array([[10.0, 20.0], [40.0, 22.0], [25.0, 45.0]])
    target = source @ (scale * rotation).T + shift
    matrix = similarity_transform(source, target)
    assert np.allclose(matrix[:, :2], scale * rotation) and np.allclose(matrix[:, 2], shift)
    with pytest.raises(ValueError):
        similarity_transform(np.zeros((3, 2)), target)


def test_warp_affine_identity_and_outside_is_black() -> None:
    image = np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    assert np.array_equal(warp_affine(image, identity, (30, 20)), image)
    shifted = warp_affine(image, np.array([[1.0, 0, 5], [0, 1.0, 0]]), (30, 20))
    assert np.array_equal(shifted[:, 5:], image[:, :25]) and not shifted[:, :5].any()


def test_dlib_landmarks_map_onto_the_template(manifest_path: Path, astronaut: np.ndarray) -> None:
    """With HOG (no detector points), the chip comes from dlib's landmarks."""
    engine = FaceEngine(EngineOptions(engine=Engine.ONNX, detector=Detector.HOG, recognizer=str(manifest_path), threads=1))
    [face] = engine.faces(astronaut)
    assert face.chip.shape == (SIZE, SIZE, 3) and face.chip.dtype == np.uint8
    assert face.landmarks.shape == (5, 2)
    # dlib's points 2-3 are the eye on the image's left, as ArcFace's first point is.
    eyes = eyes_and_nose(face.landmarks)
    assert eyes[0, 0] < eyes[1, 0]
    # The approximation (nose base for nose tip, no mouth): a few chip pixels of disagreement.
    residual = alignment_residual(face.landmarks, TEMPLATE)
    assert residual < 4.0, residual
    chip = template_chip(astronaut, face.landmarks, TEMPLATE, (SIZE, SIZE))
    assert np.array_equal(chip, face.chip)
    assert template_points(TEMPLATE).shape == (3, 2)


# -- the runtime and the engine -----------------------------------------------------------


def test_runtime_prepares_colour_order_and_layout(tmp_path: Path) -> None:
    chips = np.random.default_rng(2).integers(0, 255, (3, SIZE, SIZE, 3), dtype=np.uint8)
    rgb = OnnxRecognizer(load_manifest(write_recognizer(tmp_path / "a")), threads=1)
    bgr = OnnxRecognizer(load_manifest(write_recognizer(tmp_path / "b", colour_order="BGR")), threads=1)
    tensor = rgb.prepare(chips)
    assert tensor.shape == (3, 3, SIZE, SIZE) and tensor.dtype == np.float32
    assert np.allclose(tensor[1, 0], (chips[1, :, :, 0] - 127.5) / 127.5)
    assert np.allclose(bgr.prepare(chips)[1, 0], tensor[1, 2])
    out = rgb.compute(chips)
    assert out.shape == (3, DIM) and out.dtype == np.float32
    assert np.array_equal(np.concatenate([rgb.compute(chips[i : i + 1]) for i in range(3)]), out)
    assert rgb.compute(chips[:0]).shape == (0, DIM)
    assert "CPUExecutionProvider" in rgb.providers
    with pytest.raises(ValueError):
        rgb.compute(np.zeros((1, 150, 150, 3), dtype=np.uint8))


def test_engine_embeds_with_the_manifest_model(engine: FaceEngine, manifest_path: Path, astronaut: np.ndarray) -> None:
    manifest = load_manifest(manifest_path)
    assert engine.model_id == manifest.model_id and engine.template_id == manifest.model_id + "/flip"
    assert engine.embedding_size == DIM
    [face] = engine.analyze(astronaut)
    assert face.descriptor is not None and face.descriptor.shape == (DIM,)
    assert abs(float(np.linalg.norm(face.descriptor)) - 1) < 1e-5
    mirrored = engine.analyze(np.ascontiguousarray(astronaut[:, ::-1]))[0].descriptor
    assert mirrored is not None and float(face.descriptor @ mirrored) > 0.9
    assert engine.embed([]).shape == (0, DIM)
    described = engine.describe(load_detector=False)
    assert described["model_id"] == manifest.model_id and described["embedding_size"] == DIM
    assert described["recognizer_providers"] == ["CPUExecutionProvider"]


# -- provenance, built-in templates, flip per manifest ----------------------------------------


@pytest.mark.parametrize("licence", [None, "", "   "])
def test_a_manifest_without_a_licence_is_refused_in_one_line(tmp_path: Path, manifest_path: Path, licence: str | None) -> None:
    data = json.loads(manifest_path.read_text())
    if licence is None:
        del data["licence"]
    else:
        data["licence"] = licence
    bad = tmp_path / "nolicence.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="states no 'licence'") as caught:
        load_manifest(bad)
    assert "\n" not in caught.value.message


def test_provenance_is_on_record(manifest_path: Path) -> None:
    manifest = load_manifest(manifest_path)
    record = manifest.provenance()
    assert record["licence"].startswith("test fixture") and record["training_data"] and record["intended_use"]
    assert record["sha256"] == manifest.sha256 and record["manifest"] == str(manifest_path)
    engine = FaceEngine(EngineOptions(recognizer=str(manifest_path)))
    assert engine.provenance == record
    bundled = FaceEngine(EngineOptions()).provenance
    assert bundled["model_id"] == "dlib-resnet-v1" and bundled["licence"].startswith("CC0")


def test_optional_statements_may_be_absent_but_not_malformed(tmp_path: Path, manifest_path: Path) -> None:
    data = json.loads(manifest_path.read_text())
    del data["training_data"], data["intended_use"]
    path = tmp_path / "terse.json"
    path.write_text(json.dumps(data))
    assert load_manifest(path).provenance()["training_data"] is None
    path.write_text(json.dumps(data | {"intended_use": ["not", "text"]}))
    with pytest.raises(ManifestError, match="'intended_use' must be a statement"):
        load_manifest(path)


def test_builtin_template_by_name(tmp_path: Path, manifest_path: Path) -> None:
    data = json.loads(manifest_path.read_text())
    path = tmp_path / "named.json"
    path.write_text(json.dumps(data | {"template": "arcface-112"}))
    assert load_manifest(path).template == load_manifest(manifest_path).template == ARCFACE_112_TEMPLATE
    path.write_text(json.dumps(data | {"template": "sphereface-96"}))
    with pytest.raises(ManifestError, match="names no built-in template \\(arcface-112\\)"):
        load_manifest(path)


def test_flip_averaging_per_manifest(tmp_path: Path, manifest_path: Path, astronaut: np.ndarray) -> None:
    data = json.loads(manifest_path.read_text())
    data["file"] = str(manifest_path.parent / data["file"])
    path = tmp_path / "plain.json"
    path.write_text(json.dumps(data | {"flip_average": False}))
    manifest = load_manifest(path)
    plain = FaceEngine(EngineOptions(engine=Engine.ONNX, recognizer=str(path), threads=1, flip_average=True))
    assert plain.flip_average is False and plain.template_id == manifest.model_id
    [face] = plain.analyze(astronaut)
    raw = plain.embedder.runtime.compute(face.chip[None])[0]
    assert np.allclose(face.descriptor, raw / np.linalg.norm(raw), atol=1e-6)  # no mirror averaged in
    path.write_text(json.dumps(data | {"flip_average": "yes"}))
    with pytest.raises(ManifestError, match="'flip_average' must be true or false"):
        load_manifest(path)


# -- alignment from the detector's own 5 points ------------------------------------------


def test_keypoints_land_on_the_template(manifest_path: Path) -> None:
    from faceward.vision.align import keypoint_chip, keypoint_transform
    from faceward.vision.recognizer import TemplateAligner
    from faceward.vision.types import Box

    angle, scale, shift = 0.25, 2.2, np.array([60.0, 40.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    keypoints = (TEMPLATE @ (scale * rotation).T + shift).astype(np.float32)  # a face 2.2x larger, turned 14 degrees
    matrix = keypoint_transform(keypoints, TEMPLATE)
    assert np.allclose(keypoints @ matrix[:, :2].T + matrix[:, 2], TEMPLATE, atol=1e-4)

    image = np.zeros((400, 400, 3), dtype=np.uint8)
    for x, y in np.rint(keypoints).astype(int):
        image[y - 3 : y + 4, x - 3 : x + 4] = 255  # a bright mark on each of the five points
    chip = keypoint_chip(image, keypoints, TEMPLATE, (SIZE, SIZE))
    for x, y in np.rint(TEMPLATE).astype(int):
        assert chip[y, x].min() > 200, (x, y)
    aligner = TemplateAligner(load_manifest(manifest_path))
    dlib_points = np.zeros((5, 2), np.float32) + 1  # ignored once the detector gives points
    assert np.array_equal(aligner.chip(image, Box(0, 0, 400, 400), dlib_points, keypoints), chip)
    with pytest.raises(ValueError, match="5 x 2"):
        keypoint_transform(keypoints[:3], TEMPLATE)


def test_the_engine_cuts_the_chip_from_yunets_points(engine: FaceEngine, astronaut: np.ndarray) -> None:
    from faceward.vision.align import keypoint_chip

    [face] = engine.faces(astronaut)
    assert face.detector == "yunet" and face.keypoints is not None and face.keypoints.shape == (5, 2)
    assert np.array_equal(face.chip, keypoint_chip(astronaut, face.keypoints, TEMPLATE, (SIZE, SIZE)))
    left_eye, right_eye = face.keypoints[0], face.keypoints[1]
    assert left_eye[0] < right_eye[0]  # the template's order: the eye on the image's left first
