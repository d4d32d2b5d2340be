"""5-point landmarks and the aligned chips the descriptors see.

Two alignments, both pure functions of the image and the landmarks:

- :func:`face_chip`: the 150x150 chip dlib's ResNet descriptor was trained on,
  exactly as ``dlib.get_face_chip`` cuts it.
- :func:`template_chip`: the chip a recognizer described by a manifest expects,
  by a least-squares similarity transform (Umeyama) that maps three points
  derived from dlib's 5 landmarks (the two eye centres and the base of the nose)
  onto the matching three of the manifest's 5 reference points (eye centres and
  nose tip of ArcFace's 112x112 template, for instance).

- :func:`keypoint_chip`: the same chip from a detector's own 5 points (YuNet's
  eye centres, nose tip and mouth corners), all five fitted to the template:
  the alignment such models were trained with, used whenever the detector
  gives points.

The second, used only when the detector gives no points (HOG, MMOD, the
central stand-in), is an approximation of the 5-point alignment such models were
trained with: dlib's detector gives eye *corners* (we use their midpoints for
the eye centres, close to the pupils on a frontal face) and the *base* of the
nose, not its tip, and no mouth corners. The nose base lies about 0.74
inter-ocular distances below the eyes where ArcFace's nose tip lies at 0.57, so
the fit, which spreads that disagreement over the three points, draws the face
about 10% smaller than the model's own alignment would, eyes about a pixel high
and the nose 2 px low in the 112x112 frame (scikit-image's astronaut: RMS
residual 2.1 px; :func:`alignment_residual` reports it for any face). Models
trained on insightface's 5-point crops tolerate this; a manifest whose template
were made for dlib's points would remove it.
"""

from __future__ import annotations

import dlib
import numpy as np
from numpy.typing import NDArray

from faceward.vision.decode import RGBImage
from faceward.vision.models import ModelName, verified_path
from faceward.vision.types import Box

CHIP_SIZE = 150
CHIP_PADDING = 0.25  # what dlib's compute_face_descriptor uses

# dlib's 5-point order: the two corners of the eye on the image's right (the subject's left eye),
# the two corners of the other eye, then the base of the nose.
DLIB5_RIGHT_EYE = (0, 1)
DLIB5_LEFT_EYE = (2, 3)
DLIB5_NOSE_BASE = 4
# The 5-point template order ArcFace and most insightface models use: eye on the image's left,
# eye on the image's right, nose tip, mouth corner left, mouth corner right.
TEMPLATE_LEFT_EYE, TEMPLATE_RIGHT_EYE, TEMPLATE_NOSE = 0, 1, 2

# ArcFace's reference points in its 112x112 input (insightface ``arcface_dst``).
ARCFACE_112_TEMPLATE: tuple[tuple[float, float], ...] = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)

# The version of the way :class:`~faceward.vision.recognizer.TemplateAligner` cuts a chip. A change that
# alters chips (the fit, the points, the interpolation) bumps it, so calibrations measured on the old
# chips are no longer found (a manifest's ``alignment_sha256`` includes it).
KEYPOINT_ALIGNER = "umeyama-5pt-bilinear-1"

Points = NDArray[np.float64]
Affine = NDArray[np.float64]  # 2 x 3: [x', y'] = A @ [x, y, 1]


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


def similarity_transform(source: Points, target: Points) -> Affine:
    """Least-squares similarity (rotation, uniform scale, translation) taking ``source`` onto ``target``.

    Umeyama (1991), without reflection. Both are ``N x 2`` with N >= 2; returns the 2x3 matrix.
    """
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"expected two N x 2 point sets (N >= 2), got {src.shape} and {dst.shape}")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = float((src_c**2).sum() / len(src))
    if src_var < 1e-12:
        raise ValueError("the source points coincide: no transform")
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    scale = float((singular * sign).sum() / src_var)
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def eyes_and_nose(landmarks: NDArray[np.float32]) -> Points:
    """dlib's 5 landmarks as (eye on the image's left, eye on the image's right, base of the nose)."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"expected dlib's 5 landmarks (5 x 2), got {points.shape}")
    return np.stack([
        points[list(DLIB5_LEFT_EYE)].mean(axis=0),
        points[list(DLIB5_RIGHT_EYE)].mean(axis=0),
        points[DLIB5_NOSE_BASE],
    ])


def template_points(template: Points) -> Points:
    """The three reference points of a 5-point template that dlib's landmarks can be matched to."""
    points = np.asarray(template, dtype=np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"expected a 5-point template (5 x 2), got {points.shape}")
    return points[[TEMPLATE_LEFT_EYE, TEMPLATE_RIGHT_EYE, TEMPLATE_NOSE]]


def template_transform(landmarks: NDArray[np.float32], template: Points) -> Affine:
    """Image-to-chip similarity mapping dlib's eyes and nose base onto the template's eyes and nose."""
    return similarity_transform(eyes_and_nose(landmarks), template_points(template))


def alignment_residual(landmarks: NDArray[np.float32], template: Points) -> float:
    """Root-mean-square distance, in chip pixels, between the mapped landmarks and the template's points."""
    matrix = template_transform(landmarks, template)
    source = eyes_and_nose(landmarks)
    mapped = source @ matrix[:, :2].T + matrix[:, 2]
    return float(np.sqrt(((mapped - template_points(template)) ** 2).sum(axis=1).mean()))


def warp_affine(image: RGBImage, matrix: Affine, size: tuple[int, int]) -> NDArray[np.uint8]:
    """The ``width x height`` chip whose pixel (x, y) is ``image`` at ``inverse(matrix) @ (x, y, 1)``.

    Bilinear, pixel centres at integer coordinates, black outside the image
    (``cv2.warpAffine``'s defaults, to within its fixed-point rounding).
    """
    width, height = size
    forward = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(forward)[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    src_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    src_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    rows, cols = image.shape[:2]
    # One pixel of black around the image: neighbours outside it read 0.
    padded = np.zeros((rows + 2, cols + 2, 3), dtype=np.float32)
    padded[1:-1, 1:-1] = image[..., :3] if image.ndim == 3 else image[..., None]
    px = np.clip(src_x + 1.0, 0.0, cols + 1.0)
    py = np.clip(src_y + 1.0, 0.0, rows + 1.0)
    x0 = np.minimum(np.floor(px).astype(np.intp), cols)
    y0 = np.minimum(np.floor(py).astype(np.intp), rows)
    fx = (px - x0)[..., None].astype(np.float32)
    fy = (py - y0)[..., None].astype(np.float32)
    top = padded[y0, x0] * (1 - fx) + padded[y0, x0 + 1] * fx
    bottom = padded[y0 + 1, x0] * (1 - fx) + padded[y0 + 1, x0 + 1] * fx
    out = top * (1 - fy) + bottom * fy
    return np.ascontiguousarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))


def template_chip(
    image: RGBImage, landmarks: NDArray[np.float32], template: Points, size: tuple[int, int]
) -> NDArray[np.uint8]:
    """The ``width x height`` RGB chip a template-aligned recognizer expects (pure, like :func:`face_chip`)."""
    return warp_affine(image, template_transform(landmarks, template), size)


def keypoint_transform(keypoints: NDArray[np.float32], template: Points) -> Affine:
    """Image-to-chip similarity taking a detector's 5 points onto the template's 5, in the template's order.

    The alignment such models were trained with (insightface's ``norm_crop``):
    eye centres, nose tip and mouth corners, all five in the least-squares fit.
    """
    points = np.asarray(keypoints, dtype=np.float64)
    reference = np.asarray(template, dtype=np.float64)
    if points.shape != (5, 2) or reference.shape != (5, 2):
        raise ValueError(f"expected 5 x 2 keypoints and template, got {points.shape} and {reference.shape}")
    return similarity_transform(points, reference)


def keypoint_chip(
    image: RGBImage, keypoints: NDArray[np.float32], template: Points, size: tuple[int, int]
) -> NDArray[np.uint8]:
    """The chip cut from a detector's own 5 points (pure): what a template-aligned recognizer was trained on."""
    return warp_affine(image, keypoint_transform(keypoints, template), size)
