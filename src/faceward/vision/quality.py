"""Quality figures from the box, the chip and the 5 landmarks, and the enrollment gate on them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from faceward.vision.errors import AmbiguousSubject
from faceward.vision.types import Box, Quality

# The subject of an enrollment photo is its largest face when that face is at least this many
# times as wide as every other and overlaps none (boxes sharing more than OVERLAP_IOU of their
# union): the others are bystanders (decision 013).
DOMINANT_RATIO = 1.3
OVERLAP_IOU = 0.1


@dataclass(frozen=True, slots=True)
class QualityLimits:
    min_face_px: int = 40
    min_sharpness: float = 10.0
    min_detector_score: float = 0.0
    min_frontalness: float = 0.3  # 0.3-0.5 matched as well as the rest on lfw-dev; under 0.3 worse (decision 013)


def sharpness(chip: NDArray[np.uint8]) -> float:
    """Variance of the 4-neighbour Laplacian of the grey chip: low means blur."""
    grey = chip.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    lap = -4 * grey[1:-1, 1:-1] + grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
    return float(lap.var())


def frontalness(landmarks: NDArray[np.float32]) -> float:
    """1.0 when the nose sits midway between the eyes, falling to 0 as the head turns to profile."""
    eye_a = landmarks[0:2].mean(axis=0)
    eye_b = landmarks[2:4].mean(axis=0)
    axis = eye_b - eye_a
    span = float(np.linalg.norm(axis))
    if span < 1e-6:
        return 0.0
    mid = (eye_a + eye_b) / 2
    offset = float(np.dot(landmarks[4] - mid, axis / span))
    return max(0.0, 1.0 - 2.0 * abs(offset) / span)


def measure(face_px: int, chip: NDArray[np.uint8], landmarks: NDArray[np.float32], score: float) -> Quality:
    return Quality(face_px=face_px, sharpness=sharpness(chip), detector_score=score, frontalness=frontalness(landmarks))


def refusals(quality: Quality, limits: QualityLimits) -> list[str]:
    """Every limit the face fails, in words; empty means it may be enrolled."""
    reasons = []
    if quality.face_px < limits.min_face_px:
        reasons.append(f"face is {quality.face_px} px wide, under the {limits.min_face_px} px minimum")
    if quality.sharpness < limits.min_sharpness:
        reasons.append(
            f"face is blurred (sharpness {quality.sharpness:.1f} < {limits.min_sharpness}; on lfw-dev, probes under "
            "10 were found at rank 1 89% of the time, against 95% for the rest)"
        )
    if quality.detector_score < limits.min_detector_score:
        reasons.append(f"detector score {quality.detector_score:.2f} < {limits.min_detector_score}")
    if quality.frontalness < limits.min_frontalness:
        reasons.append(
            f"head is turned too far (frontalness {quality.frontalness:.2f} < {limits.min_frontalness}; on lfw-dev, "
            "probes under 0.3 were found at rank 1 78% of the time, against 95% for the rest)"
        )
    return reasons


def dominant_face(boxes: list[Box]) -> int:
    """Index of the face an enrollment photo is of; the others are bystanders.

    That is the largest face, when it is :data:`DOMINANT_RATIO` times as wide
    as each other face and overlaps none of them (IoU above :data:`OVERLAP_IOU`;
    neighbours' boxes may touch). Raises :class:`AmbiguousSubject`
    otherwise (two people of similar size, or faces on top of each other).
    """
    if not boxes:
        raise ValueError("no faces")
    order = sorted(range(len(boxes)), key=lambda i: -boxes[i].area)
    subject = boxes[order[0]]
    for other in (boxes[i] for i in order[1:]):
        overlapping = subject.iou(other) > OVERLAP_IOU
        if subject.width < DOMINANT_RATIO * other.width or overlapping:
            raise AmbiguousSubject(
                f"{len(boxes)} faces in the image and none clearly the subject (the largest is {subject.width} px "
                f"wide, another {other.width} px{', overlapping it' if overlapping else ''}); "
                "crop the photo to the subject"
            )
    return order[0]
