"""Face detectors: dlib's HOG (fast, frontal) and MMOD CNN (slower, finds harder faces)."""

from __future__ import annotations

from dataclasses import dataclass
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


def _clip(rect: dlib.rectangle, height: int, width: int) -> Box:
    # dlib rectangles are inclusive; ours are exclusive on the right and bottom.
    return Box(
        max(0, int(rect.left())), max(0, int(rect.top())),
        min(width, int(rect.right()) + 1), min(height, int(rect.bottom()) + 1),
    )


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
