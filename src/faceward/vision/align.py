"""5-point landmarks and the 150x150 chip dlib's ResNet descriptor was trained on."""

from __future__ import annotations

import dlib
import numpy as np
from numpy.typing import NDArray

from faceward.vision.decode import RGBImage
from faceward.vision.models import ModelName, verified_path
from faceward.vision.types import Box

CHIP_SIZE = 150
CHIP_PADDING = 0.25  # what dlib's compute_face_descriptor uses


def _rect(box: Box) -> dlib.rectangle:
    return dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1)


class LandmarkPredictor:
    """dlib's 5-point shape predictor: outer/inner corner of each eye, then the base of the nose."""

    def __init__(self) -> None:
        self._predictor = dlib.shape_predictor(str(verified_path(ModelName.LANDMARKS_5)))

    def predict(self, image: RGBImage, box: Box) -> NDArray[np.float32]:
        shape = self._predictor(image, _rect(box))
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


def face_chip(image: RGBImage, box: Box, landmarks: NDArray[np.float32]) -> NDArray[np.uint8]:
    """The aligned chip, exactly as ``dlib.get_face_chip`` cuts it (pure: image and landmarks in, chip out)."""
    points = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in landmarks])
    shape = dlib.full_object_detection(_rect(box), points)
    chip = dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
    return np.ascontiguousarray(chip, dtype=np.uint8)
