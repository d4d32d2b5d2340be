"""YuNet-n's detector (an ONNX Runtime session) on real and made photos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from faceward.vision.detect import YuNetDetector
from faceward.vision.scale import working_copy


@pytest.fixture(scope="module")
def detector() -> YuNetDetector:
    return YuNetDetector(threads=1)


def test_finds_the_astronaut_with_five_landmarks_in_place(detector: YuNetDetector, astronaut: np.ndarray) -> None:
    found = detector.detect(astronaut)
    assert len(found) == 1
    face = found[0]
    assert face.detector == "yunet" and face.score > 0.8 and face.landmarks is not None
    eye_l, eye_r, nose, mouth_l, mouth_r = face.landmarks.tolist()
    assert eye_l[0] < eye_r[0] and mouth_l[0] < mouth_r[0]  # image-left point first
    assert max(eye_l[1], eye_r[1]) < nose[1] < min(mouth_l[1], mouth_r[1])
    raw = face.raw_box
    assert raw is not None
    for x, y in face.landmarks.tolist():
        assert raw.left <= x <= raw.right and raw.top <= y <= raw.bottom
    assert face.box.iou(raw) > 0.5


def test_a_large_photo_is_detected_on_a_working_copy_and_mapped_back(
    detector: YuNetDetector, astronaut: np.ndarray
) -> None:
    """The same face 8x larger: found on the 640-px working copy, at 8x the coordinates."""
    big = np.asarray(Image.fromarray(astronaut).resize((2400, 2400), Image.Resampling.BICUBIC))
    small, factor = working_copy(big)
    assert max(small.shape) == 640 and factor == pytest.approx(2400 / 640)
    [base] = detector.detect(astronaut)
    [large] = detector.detect(big)
    assert base.landmarks is not None and large.landmarks is not None
    assert np.abs(large.landmarks / 8 - base.landmarks).max() < 3.0
    assert abs(large.box.width / 8 - base.box.width) < 4


def test_blank_and_noise_images_have_no_face(detector: YuNetDetector) -> None:
    rng = np.random.default_rng(0)
    assert detector.detect(np.full((480, 640, 3), 128, np.uint8)) == []
    assert detector.detect(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)) == []


def test_every_pasted_face_is_found(detector: YuNetDetector, astronaut: np.ndarray) -> None:
    """A made group photo: the astronaut's face pasted three times at different sizes onto a grey canvas."""
    face = Image.fromarray(astronaut[20:260, 40:260])
    canvas = Image.new("RGB", (1600, 900), (120, 120, 120))
    spots = [((100, 100), 300), ((700, 300), 160), ((1200, 500), 90)]
    for (x, y), side in spots:
        canvas.paste(face.resize((side, side)), (x, y))
    found = detector.detect(np.asarray(canvas))
    assert len(found) == 3
    centres = sorted(((d.box.left + d.box.right) / 2, (d.box.top + d.box.bottom) / 2) for d in found)
    for (cx, cy), ((x, y), side) in zip(centres, spots):
        assert x < cx < x + side and y < cy < y + side
