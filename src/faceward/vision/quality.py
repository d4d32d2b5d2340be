"""Quality figures from the box, the chip and the 5 landmarks, and the enrollment gate on them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, cast

import numpy as np
from numpy.typing import NDArray

from faceward.vision.types import Quality

@dataclass(frozen=True, slots=True)
class QualityLimits:
    """Limits on a face's quality. The defaults are enrollment's: fitted on the role an enrolled face plays,
    the gallery photo (decision 037); :data:`PROBE_LIMITS` are those a search warns of."""

    min_face_px: int = 40
    min_sharpness: float = 0.0  # 0..1 (see :func:`sharpness`); no blur limit was warranted for gallery photos
    min_detector_score: float = 0.0
    min_frontalness: float = 0.05  # from the detector's 5 points (see :func:`frontalness`)


# Fitted on lfw-dev probe photos (decision 022): a probe under these is found at rank 1 measurably less often.
# A search warns of them; enrollment takes such a face but says what it costs.
PROBE_LIMITS = QualityLimits(min_sharpness=0.38, min_frontalness=0.15)

Role = Literal["enrolled", "probe"]

# What each default limit was fitted on (scripts/fit_quality_limits.py on lfw-dev, never on the first photos
# enrollment is judged on): how faces under it matched, against the rest, in that role.
EVIDENCE: dict[tuple[Role, str, float], str] = {
    ("probe", "sharpness", 0.38): "probes under 0.38 were found at rank 1 78% of the time, against 95% for the rest",
    ("probe", "frontalness", 0.15): "probes under 0.15 were found at rank 1 79% of the time, against 95% for the rest",
    ("enrolled", "sharpness", 0.38):
        "other photos of people enrolled from a face under 0.38 were found at rank 1 84% of the time, against 94%",
    ("enrolled", "frontalness", 0.15):
        "other photos of people enrolled from a face under 0.15 were found at rank 1 84% of the time, against 94%",
    ("enrolled", "frontalness", 0.05):
        "other photos of people enrolled from a face under 0.05 were found at rank 1 74% of the time, against 94%",
}


def _evidence(role: Role, key: str, limit: float) -> str:
    found = EVIDENCE.get((role, key, limit))
    return f"; on lfw-dev, {found}" if found else ""


BLUR_WINDOW = 11  # px of the 150-px chip: the re-blur of Crete-Roffet et al. (2007), as scikit-image uses


def _reblurred_variation(grey: NDArray[np.float32]) -> NDArray[np.float32]:
    """``|diff|`` along the rows of ``grey`` after an 11-px box blur along them (reflected edges).

    The difference of two neighbouring box means is the pixel entering the window minus the one
    leaving it, over the window: no blurred image is ever made.
    """
    half, width = BLUR_WINDOW // 2, grey.shape[1]
    padded = np.pad(grey, ((0, 0), (half, half)), mode="reflect")
    variation = np.abs(padded[:, 2 * half + 1 : 2 * half + width] - padded[:, : width - 1]) / np.float32(BLUR_WINDOW)
    return cast(NDArray[np.float32], variation)


def sharpness(chip: NDArray[np.uint8]) -> float:
    """1 minus the blur effect of the chip's central face area (Crete-Roffet, Dolmiere, Ladret, Nicolas 2007).

    The chip is re-blurred with an 11-px box along each axis; a sharp face loses much of its
    pixel-to-pixel variation to that re-blur, a blurred one little. The figure is a ratio, so
    it does not depend on the face's contrast or lighting, and it is read on the aligned chip,
    so on the face at one scale whatever its size in the photo (a small face enlarged to the
    chip reads as blurred, as the recognizer sees it). 1 is sharp, 0 featureless.
    """
    height, width = chip.shape[:2]
    face = chip[height // 5 : height - height // 5, width // 5 : width - width // 5]
    grey = face.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    blur = 0.0
    for rows in (grey, grey.T):
        variation = np.abs(rows[:, 1:] - rows[:, :-1])
        total = float(variation.sum())
        if total <= 1e-6:
            return 0.0
        kept = np.maximum(0.0, variation - _reblurred_variation(rows))
        blur = max(blur, (total - float(kept.sum())) / total)
    return 1.0 - blur


def frontalness(landmarks: NDArray[np.float32], keypoints: NDArray[np.float32] | None = None) -> float:
    """1.0 when the nose sits on the face's midline, falling to 0 as the head turns to profile.

    With the detector's own 5 points (``keypoints``, YuNet: eye centres, nose tip, mouth corners)
    the midline is the mean of the eyes and mouth corners and the nose is its tip, which moves
    further than the base as the head turns; otherwise dlib's 5 points (eye corners, nose base)
    and the eyes' midpoint. The offset along the eye axis is measured against half the eye span.
    """
    if keypoints is not None:
        eye_a, eye_b, nose = keypoints[0], keypoints[1], keypoints[2]
        mid = keypoints[[0, 1, 3, 4]].mean(axis=0)
    else:
        eye_a, eye_b, nose = landmarks[0:2].mean(axis=0), landmarks[2:4].mean(axis=0), landmarks[4]
        mid = (eye_a + eye_b) / 2
    axis = eye_b - eye_a
    span = float(np.linalg.norm(axis))
    if span < 1e-6:
        return 0.0
    offset = float(np.dot(nose - mid, axis / span))
    return max(0.0, 1.0 - 2.0 * abs(offset) / span)


def measure(
    face_px: int, chip: NDArray[np.uint8], landmarks: NDArray[np.float32], score: float,
    keypoints: NDArray[np.float32] | None = None,
) -> Quality:
    return Quality(
        face_px=face_px, sharpness=sharpness(chip), detector_score=score, frontalness=frontalness(landmarks, keypoints)
    )


def refusals(quality: Quality, limits: QualityLimits, role: Role = "enrolled") -> list[str]:
    """Every limit the face fails, in words (with the evidence for the limit in ``role``); empty means it passes."""
    reasons = []
    if quality.face_px < limits.min_face_px:
        reasons.append(f"face is {quality.face_px} px wide, under the {limits.min_face_px} px minimum")
    if quality.sharpness < limits.min_sharpness:
        reasons.append(
            f"face is blurred (sharpness {quality.sharpness:.2f} < {limits.min_sharpness}"
            f"{_evidence(role, 'sharpness', limits.min_sharpness)})"
        )
    if quality.detector_score < limits.min_detector_score:
        reasons.append(f"detector score {quality.detector_score:.2f} < {limits.min_detector_score}")
    if quality.frontalness < limits.min_frontalness:
        reasons.append(
            f"head is turned too far (frontalness {quality.frontalness:.2f} < {limits.min_frontalness}"
            f"{_evidence(role, 'frontalness', limits.min_frontalness)})"
        )
    return reasons


def advisories(quality: Quality) -> list[str]:
    """What an enrolled face that passed enrollment's limits costs: the probe limits it fails, with what
    faces under them cost as gallery photos. Enrollment takes the face and says so."""
    return [f"enrolled, but {reason}: a better photo of this person would be found more often"
            for reason in refusals(quality, replace(PROBE_LIMITS, min_face_px=0), "enrolled")]
