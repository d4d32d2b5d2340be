"""The plain data the face engine passes around. One box type for the whole code base."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class Box:
    """Pixel rectangle, ``right`` and ``bottom`` exclusive (like Python slices), in image coordinates."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return max(0, self.right - self.left)

    @property
    def height(self) -> int:
        return max(0, self.bottom - self.top)

    @property
    def area(self) -> int:
        return self.width * self.height

    def iou(self, other: Box) -> float:
        inter = Box(
            max(self.left, other.left), max(self.top, other.top),
            min(self.right, other.right), min(self.bottom, other.bottom),
        ).area
        union = self.area + other.area - inter
        return inter / union if union else 0.0

    def as_dict(self) -> dict[str, int]:
        return {"left": self.left, "top": self.top, "right": self.right, "bottom": self.bottom}

    def scaled(self, factor: float) -> Box:
        """The same rectangle in a frame ``factor`` times larger (e.g. a reduced decode's box in the original)."""
        if factor == 1.0:
            return self
        return Box(round(self.left * factor), round(self.top * factor), round(self.right * factor), round(self.bottom * factor))


@dataclass(frozen=True, slots=True)
class Quality:
    """Figures enrollment gates on. ``face_px`` is the box width; sharpness and frontalness 0..1 (:mod:`faceward.vision.quality`)."""

    face_px: int
    sharpness: float
    detector_score: float
    frontalness: float

    def as_dict(self) -> dict[str, float]:
        return {
            "face_px": self.face_px,
            "sharpness": round(self.sharpness, 4),
            "detector_score": round(self.detector_score, 4),
            "frontalness": round(self.frontalness, 4),
        }


@dataclass(slots=True)
class Face:
    """One detected face: where it is, how good it is, its aligned chip and (once embedded) its descriptor."""

    box: Box
    detector_score: float
    detector: str
    landmarks: NDArray[np.float32]  # 5 x 2, dlib's 5-point order
    chip: NDArray[np.uint8]  # H x W x 3 RGB, aligned as the recognizer expects (150 x 150 for dlib's ResNet)
    quality: Quality
    descriptor: NDArray[np.float32] | None = field(default=None)
    # The detector's own 5 points when it gives them (YuNet: eye on the image's left, eye on the
    # image's right, nose tip, mouth corners left then right), image coordinates; None for HOG/MMOD.
    keypoints: NDArray[np.float32] | None = field(default=None)
    # The face as a person sees it when ``chip`` is not (a fused recognizer's two stacked chips): dlib's chip.
    view: NDArray[np.uint8] | None = field(default=None)
    # The clockwise turn (0, 90, 180, 270) that makes this face upright: a photo on its side or upside
    # down with no EXIF orientation. The box and points are on the photo as sent; the chip is upright.
    rotation_cw: int = 0

    @property
    def picture(self) -> NDArray[np.uint8]:
        """The aligned face a reviewer's thumbnail shows."""
        return self.view if self.view is not None else self.chip

    def summary(self) -> dict[str, Any]:
        return {"box": self.box.as_dict(), "detector": self.detector, "quality": self.quality.as_dict(),
                "rotation_cw": self.rotation_cw}
