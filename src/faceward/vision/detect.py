"""Face detectors: YuNet-n (the default: fast, finds turned and small faces, gives 5 landmarks),
dlib's HOG (frontal) and MMOD CNN (slower, finds harder faces).

YuNet runs on a working copy of the image (:mod:`faceward.vision.scale`); its
boxes are mapped to HOG-like boxes (:class:`BoxMap`) because dlib's 5-point
shape predictor, and so the ResNet chip, was trained on HOG's boxes.

The MMOD CNN runs either in dlib (:class:`MmodDetector`, the reference) or as
the converted graph on ONNX Runtime (:class:`OnnxMmodFaceDetector`, same boxes,
~9x faster); the engine picks the latter when ``engine=onnx``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import dlib
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from faceward.vision.decode import RGBImage
from faceward.vision.models import ModelName, verified_path
from faceward.vision.orientation import TURNS, turned
from faceward.vision.scale import WORKING_SIDE, resized, working_copy
from faceward.vision.types import Box
from faceward.vision.yunet import RawFaces


@dataclass(frozen=True, slots=True)
class Detection:
    """A face found: its box (HOG-like for every detector), score and, from YuNet, 5 landmarks.

    ``landmarks`` (5 x 2, image coordinates) are, in image terms: eye on the
    image's left, eye on the image's right, nose tip, mouth corner on the
    image's left, mouth corner on the image's right (ArcFace's template order).
    HOG and MMOD give none. ``raw_box`` is the detector's own box before any map.
    """

    box: Box
    score: float
    detector: str
    landmarks: NDArray[np.float32] | None = field(default=None, compare=False)
    raw_box: Box | None = None


class FaceDetector(Protocol):
    name: str

    def detect(self, image: RGBImage, upsample: int) -> list[Detection]: ...


class FaceNet(Protocol):
    """What :class:`YuNetDetector` runs: every face in an image, in its coordinates (:class:`faceward.vision.yunet.YuNet`)."""

    @property
    def providers(self) -> list[str]: ...

    def run(self, image: RGBImage, *, score_threshold: float = ...) -> RawFaces: ...


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


@dataclass(frozen=True, slots=True)
class BoxMap:
    """A fixed map from a detector's box to the box dlib's HOG would draw around the same face.

    Centre shifted by ``(dx * w, dy * h)``, then sized ``(sw * w, sh * h)``, where
    ``w``, ``h`` are the source box's. Fitted by ``scripts/fit_box_map.py`` on
    lfw-dev identities that no evaluation pair uses (decision 012).
    """

    dx: float
    dy: float
    sw: float
    sh: float

    def apply(self, x1: float, y1: float, x2: float, y2: float, height: int, width: int) -> Box:
        w, h = x2 - x1, y2 - y1
        cx, cy = (x1 + x2) / 2 + self.dx * w, (y1 + y2) / 2 + self.dy * h
        half_w, half_h = self.sw * w / 2, self.sh * h / 2
        return Box(
            max(0, round(cx - half_w)), max(0, round(cy - half_h)),
            min(width, round(cx + half_w)), min(height, round(cy + half_h)),
        )


@dataclass(frozen=True, slots=True)
class KeypointBoxMap:
    """A fixed map from a detector's 5 points to the box dlib's HOG would draw around the same face.

    The points' centroid shifted by ``(dx * s, dy * s)``, the box sized ``(sw * s, sh * s)``, where
    ``s = hypot(eye distance, eyes-to-mouth distance)``: the points place a face more steadily
    than the detector's box does (which reaches the hairline, or not). Fitted by
    ``scripts/fit_box_map.py`` on lfw-dev identities that no evaluation pair uses (decision 012).
    """

    dx: float
    dy: float
    sw: float
    sh: float

    def apply(self, points: NDArray[np.float32], height: int, width: int) -> Box:
        kp = points.astype(np.float64)
        eyes, mouth = (kp[0] + kp[1]) / 2, (kp[3] + kp[4]) / 2
        scale = float(np.hypot(np.linalg.norm(kp[1] - kp[0]), np.linalg.norm(mouth - eyes)))
        cx, cy = kp[:, 0].mean() + self.dx * scale, kp[:, 1].mean() + self.dy * scale
        half_w, half_h = self.sw * scale / 2, self.sh * scale / 2
        return Box(
            max(0, round(cx - half_w)), max(0, round(cy - half_h)),
            min(width, round(cx + half_w)), min(height, round(cy + half_h)),
        )


IDENTITY_MAP = BoxMap(0.0, 0.0, 1.0, 1.0)
# YuNet's box is taller than HOG's square and reaches the hairline; fitted on lfw-dev, see decision 012.
YUNET_TO_HOG = BoxMap(dx=-0.0365, dy=0.0433, sw=1.1354, sh=0.8244)
# From YuNet's 5 points instead: dlib's points in this box land closer to those in HOG's own box, but
# matching was no better on lfw-dev (TAR equal, FNIR 0.3637 against 0.3567), so it is not the default
# (decision 012); ``YuNetDetector(points_map=YUNET_POINTS_TO_HOG)`` uses it.
YUNET_POINTS_TO_HOG = KeypointBoxMap(dx=-0.0630, dy=-0.0362, sw=1.7266, sh=1.7113)


# The tiled pass: faces of ``smallest`` px are brought to TILE_FACE_PX on TILE_SIDE-px tiles that
# overlap by TILE_OVERLAP (so any face the tiles keep, at most TILE_OVERLAP wide, is whole in one tile).
TILE_FACE_PX = 13.0
TILE_SIDE = 640
TILE_OVERLAP = 128
MAX_TILES = 6  # the per-image budget: a 40 MP upload is tiled more coarsely, never more often
# A face this share of the long side found on the working copy makes the photo a portrait: no tiled pass.
PORTRAIT_SHARE = 0.15
# A photo whose best face scores under TURN_BELOW may not be upright; turned by quarter turns, it is taken
# as turned when a face there scores at least TURN_AT_LEAST and beats the best as sent. On 884 lfw-dev
# photos (decision 035) upright faces scored >= 0.903 as sent and <= 0.889 turned sideways; turned upside
# down they scored up to 0.918, but always below the same face upright (883 more photos).
TURN_BELOW = 0.9
TURN_AT_LEAST = 0.9
# Upside down, a face may score TURN_BELOW or more: under HALF_TURN_BELOW the half turn alone is run and taken
# where it beats the best as sent by HALF_TURN_MARGIN (fitted on lfw-dev, decision 035's addendum; an upright
# face there beat its half turn by 0.052 on average, sd 0.015, by -0.0026 at the worst of 8,831).
HALF_TURN_BELOW = 0.93
HALF_TURN_MARGIN = 0.015
# A best face the working copy shows under CROP_FACE_PX / 2 wide (the tiled pass found it) is checked again on a
# crop framed as an lfw-dev photo, where the rules above were fitted: CROP_SIDE px, the face CROP_FACE_PX wide.
CROP_SIDE = 250
CROP_FACE_PX = 100
FLAT_STD = 4.0  # a tile whose grey levels vary less than this (a blank wall, sky, a made blank image) holds no face


def _flat(image: RGBImage) -> bool:
    """Grey levels (sampled every 4th pixel) vary by less than :data:`FLAT_STD`: no face can be there."""
    return float(image[::4, ::4].astype(np.float32).mean(axis=2).std()) < FLAT_STD


def _framed(image: RGBImage, box: Box) -> RGBImage:
    """The square around ``box`` (clipped to ``image``), scaled so that the box is :data:`CROP_FACE_PX` wide."""
    side = CROP_SIDE / CROP_FACE_PX * max(box.width, box.height, 1)
    cx, cy = (box.left + box.right) / 2, (box.top + box.bottom) / 2
    left, top = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
    crop = Image.fromarray(np.ascontiguousarray(image[top : round(cy + side / 2), left : round(cx + side / 2)]))
    scale = CROP_FACE_PX / max(box.width, 1)
    size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    return np.asarray(crop.resize(size, Image.Resampling.BILINEAR), dtype=np.uint8)


def _tile_starts(length: int) -> list[int]:
    if length <= TILE_SIDE:
        return [0]
    step = TILE_SIDE - TILE_OVERLAP
    count = -(-(length - TILE_SIDE) // step) + 1
    return [min(i * step, length - TILE_SIDE) for i in range(count)]


class YuNetDetector:
    """YuNet-n on a working copy (long side ``working_side``), boxes mapped back to HOG-like boxes.

    On a large image, where faces of ``smallest`` px would be under ~16 px on the
    working copy (too small for YuNet), a second pass runs on tiles of a finer
    copy, skipping flat tiles, within a budget of :data:`MAX_TILES` tiles.
    ``upsample`` is ignored: the working copies, not upsampling, set the smallest face found.
    ``net``: the session it runs (YuNet-n on ONNX Runtime unless given).
    """

    name = "yunet"

    def __init__(
        self, *, threads: int | None = None, working_side: int = WORKING_SIDE, box_map: BoxMap = YUNET_TO_HOG,
        score_threshold: float | None = None, points_map: KeypointBoxMap | None = None, net: FaceNet | None = None,
    ) -> None:
        from faceward.vision.yunet import DEFAULT_SCORE, YuNet

        self._net: FaceNet = net or YuNet(threads=threads)
        self.working_side = working_side
        self.box_map = box_map
        self.points_map = points_map
        self.score_threshold = DEFAULT_SCORE if score_threshold is None else score_threshold

    @property
    def providers(self) -> list[str]:
        return self._net.providers

    def working_copy(self, image: RGBImage) -> tuple[RGBImage, float]:
        """The copy YuNet runs on (long side :attr:`working_side`) and the factor it was shrunk by."""
        return working_copy(image, self.working_side)

    def detect(
        self, image: RGBImage, upsample: int = 0, *, smallest: float = 40.0, copy: tuple[RGBImage, float] | None = None
    ) -> list[Detection]:
        """Faces in ``image``; ``smallest`` is the face width, in ``image`` pixels, the tiled pass reaches down to.
        ``copy``: :meth:`working_copy` of ``image`` when the caller made it already (it is not made twice)."""
        from faceward.vision.yunet import nms

        small, factor = copy or self.working_copy(image)
        if _flat(small):  # a blank or near-blank upload: nothing to run a network on
            return []
        parts = [self._net.run(small, score_threshold=self.score_threshold).scaled(factor)]
        fine = max(1.0, smallest / TILE_FACE_PX)
        widths = parts[0].boxes[:, 2] - parts[0].boxes[:, 0]
        portrait = bool(len(widths)) and float(widths.max()) >= PORTRAIT_SHARE * max(image.shape[:2])
        if factor > 1.25 * fine and not portrait:  # small faces are likely and the working copy misses them
            parts.append(self._tiles(image, fine))
        found = RawFaces.concat(parts)
        if len(parts) > 1 and len(found):
            found = found.take(nms(found.boxes, found.scores, 0.3))
        return self.detections(found, image.shape[0], image.shape[1])

    def upright_turn(
        self, image: RGBImage, found: Sequence[Detection], *, copy: tuple[RGBImage, float] | None = None
    ) -> int:
        """Counter-clockwise quarter turns that make ``image``'s faces upright: 0 unless it seems not upright.

        ``found``: YuNet's faces in ``image`` as sent. Their best score (0 for none) under :data:`TURN_BELOW`:
        the working copy turned a quarter either way and a half is taken where a face there scores at least
        :data:`TURN_AT_LEAST` and more than that; the best turn wins. Under :data:`HALF_TURN_BELOW`: the half
        turn alone, taken by :data:`HALF_TURN_MARGIN`. Where the best face is too small on the working copy
        for that, the same rule runs once more on a crop around it. YuNet places its points as if every face
        were upright, so a turned face it does find cannot be aligned. At most 3 runs on the working copy and
        4 on a 250-px crop; the caller detects again on the turned photo (tiles included).
        """
        best = max((d.score for d in found), default=0.0)
        if best >= HALF_TURN_BELOW:
            return 0
        small, factor = copy or self.working_copy(image)
        if _flat(small):
            return 0
        quarters = self._turn(small, best)
        top = max(found, key=lambda d: d.score, default=None)
        if quarters or top is None or (top.raw_box or top.box).width / factor >= CROP_FACE_PX / 2:
            return quarters
        crop = _framed(image, top.raw_box or top.box)
        sent = self._net.run(crop, score_threshold=self.score_threshold).scores
        return self._turn(crop, max(best, float(sent.max()) if len(sent) else 0.0))

    def _turn(self, picture: RGBImage, best: float) -> int:
        """The turn :meth:`upright_turn`'s rule takes on ``picture``, whose best face as sent scores ``best``."""
        if best >= HALF_TURN_BELOW:
            return 0
        turns, least = (TURNS, TURN_AT_LEAST) if best < TURN_BELOW else ((2,), best + HALF_TURN_MARGIN)
        quarters = 0
        for turn in turns:
            scores = self._net.run(turned(picture, turn), score_threshold=self.score_threshold).scores
            if len(scores) and float(scores.max()) >= least:
                least, quarters = float(scores.max()), turn
        return quarters

    def _tiles(self, image: RGBImage, fine: float) -> RawFaces:
        """Small faces from tiles of ``image`` shrunk by ``fine`` (or more, to stay within the tile budget)."""
        height, width = image.shape[:2]
        while len(_tile_starts(round(width / fine))) * len(_tile_starts(round(height / fine))) > MAX_TILES:
            fine *= 1.15
        copy = resized(image, fine)
        exact = image.shape[1] / copy.shape[1]
        tiles, origins = [], []
        for top in _tile_starts(copy.shape[0]):
            for left in _tile_starts(copy.shape[1]):
                if _flat(copy[top : top + TILE_SIDE, left : left + TILE_SIDE]):
                    continue
                tiles.append(copy[top : top + TILE_SIDE, left : left + TILE_SIDE])
                origins.append((left, top))
        parts = []
        # One run per tile: a batched run was slower on ONNX Runtime's CPU provider.
        for (left, top), tile in zip(origins, tiles):
            found = self._net.run(tile, score_threshold=self.score_threshold)
            small = (found.boxes[:, 2] - found.boxes[:, 0]) <= TILE_OVERLAP
            parts.append(found.take(np.flatnonzero(small)).scaled(exact, (left * exact, top * exact)))
        return RawFaces.concat(parts)

    def detections(self, found: RawFaces, height: int, width: int) -> list[Detection]:
        """YuNet's faces (in this image's coordinates) as :class:`Detection` s with mapped boxes."""
        out = []
        for (x1, y1, x2, y2), score, points in zip(found.boxes.tolist(), found.scores.tolist(), found.landmarks):
            if self.points_map is not None:
                box = self.points_map.apply(np.asarray(points), height, width)
            else:
                box = self.box_map.apply(x1, y1, x2, y2, height, width)
            raw = Box(max(0, round(x1)), max(0, round(y1)), min(width, round(x2)), min(height, round(y2)))
            if box.area > 0:
                out.append(Detection(box, float(score), self.name, np.asarray(points, dtype=np.float32), raw))
        return out
