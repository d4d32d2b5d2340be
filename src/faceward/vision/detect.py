"""Face detectors: dlib's HOG (fast, frontal) and MMOD CNN (slower, finds harder faces).

The MMOD CNN runs either in dlib (:class:`MmodDetector`, the reference) or as
the converted graph on ONNX Runtime (:class:`OnnxMmodFaceDetector`, same boxes,
~9x faster); the engine picks the latter when ``engine=onnx``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import dlib

from faceward.vision.decode import RGBImage
from faceward.vision.models import ModelName, verified_path
from faceward.vision.types import Box


@dataclass(frozen=True, slots=True)
class Detection:
    box: Box
    score: float
    detector: str


class FaceDetector(Protocol):
    name: str

    def detect(self, image: RGBImage, upsample: int) -> list[Detection]: ...


def inclusive_to_box(left: int, top: int, right: int, bottom: int, height: int, width: int) -> Box:
    """dlib's inclusive rectangle as our :class:`Box` (exclusive right and bottom), clipped to the image."""
    return Box(max(0, int(left)), max(0, int(top)), min(width, int(right) + 1), min(height, int(bottom) + 1))


def _clip(rect: dlib.rectangle, height: int, width: int) -> Box:
    return inclusive_to_box(rect.left(), rect.top(), rect.right(), rect.bottom(), height, width)


class HogDetector:
    name = "hog"

    def __init__(self) -> None:
        self._detector = dlib.get_frontal_face_detector()

    def detect(self, image: RGBImage, upsample: int) -> list[Detection]:
        rects, scores, _ = self._detector.run(image, upsample, 0.0)
        height, width = image.shape[:2]
        found = [Detection(_clip(r, height, width), float(s), self.name) for r, s in zip(rects, scores)]
        return [d for d in found if d.box.area > 0]


class MmodDetector:
    name = "mmod"

    def __init__(self) -> None:
        self._detector = dlib.cnn_face_detection_model_v1(str(verified_path(ModelName.MMOD)))

    def detect(self, image: RGBImage, upsample: int) -> list[Detection]:
        height, width = image.shape[:2]
        found = [
            Detection(_clip(d.rect, height, width), float(d.confidence), self.name)
            for d in self._detector(image, upsample)
        ]
        return [d for d in found if d.box.area > 0]


class OnnxMmodFaceDetector:
    """dlib's MMOD CNN converted to ONNX (:class:`faceward.vision.onnx.OnnxMmodDetector`): dlib's boxes, faster.

    The converted detector reports dlib's inclusive rectangles; they become
    exclusive :class:`Box` es here, exactly as :class:`MmodDetector` converts dlib's.
    """

    name = "mmod"

    def __init__(self, cache_dir: Path, *, threads: int | None = None) -> None:
        from faceward.vision.onnx import OnnxMmodDetector, converted_model_path

        self._detector = OnnxMmodDetector(converted_model_path("mmod", cache_dir), threads=threads)

    @property
    def providers(self) -> list[str]:
        return self._detector.providers

    def detect(self, image: RGBImage, upsample: int) -> list[Detection]:
        height, width = image.shape[:2]
        found = [
            Detection(inclusive_to_box(left, top, right, bottom, height, width), float(score), self.name)
            for left, top, right, bottom, score in self._detector.detect(image, upsample)
        ]
        return [d for d in found if d.box.area > 0]
