"""The engine runs the converted MMOD detector when engine=onnx, with dlib's boxes in our Box convention.

dlib's rectangles are inclusive (``right() = left() + width() - 1``); a
:class:`~faceward.vision.types.Box` is exclusive on the right and bottom. The
converted detector reports dlib's inclusive numbers, so the engine's boxes must
be dlib's plus one on the right and bottom, for the primary detector and for
the fallback after HOG finds nothing.
"""

from __future__ import annotations

from pathlib import Path

import dlib
import numpy as np
import pytest

from faceward.settings import Detector, Engine
from faceward.vision.decode import read_image_file
from faceward.vision.detect import Detection, OnnxMmodFaceDetector
from faceward.vision.engine import EngineOptions, FaceEngine
from faceward.vision.models import ModelName, verified_path
from faceward.vision.types import Box

pytestmark = pytest.mark.slow

# lfw-dev images where dlib's HOG (upsample 1) finds no face, so the engine falls back to MMOD.
HOG_MISSES = ("Hernan_Diaz/Hernan_Diaz_0001.jpg", "Jon_Stewart/Jon_Stewart_0001.jpg")


@pytest.fixture(scope="module")
def reference() -> dlib.cnn_face_detection_model_v1:
    return dlib.cnn_face_detection_model_v1(str(verified_path(ModelName.MMOD)))


def dlib_boxes(reference: dlib.cnn_face_detection_model_v1, image: np.ndarray, upsample: int) -> list[tuple[Box, float]]:
    height, width = image.shape[:2]
    out = []
    for d in reference(image, upsample):
        r = d.rect
        box = Box(max(0, r.left()), max(0, r.top()), min(width, r.right() + 1), min(height, r.bottom() + 1))
        assert (r.right() + 1 - r.left(), r.bottom() + 1 - r.top()) == (r.width(), r.height())  # inclusive
        out.append((box, float(d.confidence)))
    return sorted(out, key=lambda item: item[0].area, reverse=True)


def same(found: list[Detection], expected: list[tuple[Box, float]]) -> None:
    assert [d.box for d in found] == [box for box, _ in expected]
    assert all(abs(d.score - score) <= 1e-4 for d, (_, score) in zip(found, expected, strict=True))
    assert all(d.detector == "mmod" for d in found)


def test_onnx_engine_uses_the_converted_detector(tmp_path: Path, astronaut: np.ndarray, reference: dlib.cnn_face_detection_model_v1) -> None:
    engine = FaceEngine(EngineOptions(engine=Engine.ONNX, detector=Detector.MMOD, cache_dir=str(tmp_path)))
    found = engine.detect(astronaut)
    assert isinstance(engine._mmod, OnnxMmodFaceDetector)
    expected = dlib_boxes(reference, astronaut, 1)
    assert len(expected) == 1
    same(found, expected)
    # The face is where HOG puts it too (a sanity check on the convention, not an equality).
    hog = FaceEngine(EngineOptions(engine=Engine.ONNX, detector=Detector.HOG, detector_fallback=False)).detect(astronaut)
    assert found[0].box.iou(hog[0].box) > 0.5
    [face] = engine.analyze(astronaut)
    assert face.detector == "mmod" and face.descriptor is not None


def test_hog_fallback_runs_the_converted_detector(
    tmp_path: Path, lfw_dir: Path, reference: dlib.cnn_face_detection_model_v1
) -> None:
    engine = FaceEngine(EngineOptions(engine=Engine.ONNX, detector=Detector.HOG, cache_dir=str(tmp_path), upsample=1))
    hog = dlib.get_frontal_face_detector()
    for name in HOG_MISSES:
        image, _ = read_image_file(lfw_dir / "images" / name)
        assert len(hog(image, 1)) == 0, name
        expected = dlib_boxes(reference, image, 1)
        assert expected, name
        same(engine.detect(image), expected)
