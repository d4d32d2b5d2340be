"""Decoding MMOD score maps into boxes exactly as dlib's ``loss_mmod_::to_label`` does."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from faceward.vision.onnx.pyramid import Rect, lround

Detection = tuple[int, int, int, int, float]  # left, top, right, bottom (inclusive), confidence


@dataclass(frozen=True, slots=True)
class MmodParams:
    windows: tuple[tuple[int, int], ...]  # (width, height) per output channel
    nms_iou: float
    nms_covered: float
    map_scale: int  # input = scale * output + offset (dlib's output_tensor_to_input_tensor)
    map_offset: int
    pyramid_down: int

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> MmodParams:
        windows = tuple(
            (int(w), int(h)) for w, h in (item.split("x") for item in meta["dlib.mmod.windows"].split(";"))
        )
        iou, covered = (float(v) for v in meta["dlib.mmod.nms"].split(","))
        scale, offset = (int(v) for v in meta["dlib.mmod.map"].split(","))
        return cls(windows, iou, covered, scale, offset, int(meta["dlib.pyramid.down"]))


def _area(r: Rect) -> int:
    return max(0, r.width) * max(0, r.height)


def _overlaps(a: Rect, b: Rect, iou: float, covered: float) -> bool:
    # dlib's test_box_overlap: "outer" is the bounding box of both, not the union's area.
    inner = _area(Rect(max(a.left, b.left), max(a.top, b.top), min(a.right, b.right), min(a.bottom, b.bottom)))
    if inner == 0:
        return False
    outer = _area(Rect(min(a.left, b.left), min(a.top, b.top), max(a.right, b.right), max(a.bottom, b.bottom)))
    return inner / outer > iou or inner / _area(a) > covered or inner / _area(b) > covered


def _nearest_level(rects: list[Rect], x: int, y: int) -> int:
    best, best_dist = 0, math.inf
    for i, r in enumerate(rects):
        if r.left <= x <= r.right and r.top <= y <= r.bottom:
            return i
        nx, ny = min(max(x, r.left), r.right), min(max(y, r.top), r.bottom)
        dist = math.hypot(nx - x, ny - y)
        if dist < best_dist:
            best, best_dist = i, dist
    return best


def _to_image(rects: list[Rect], box: tuple[float, float, float, float], down: int) -> Rect:
    """``tiled_pyramid_to_image``: find the level the box's centre lies in, undo that level's scaling."""
    l, t, r, b = box
    cx, cy = (l + r) / 2.0, (t + b) / 2.0
    level = _nearest_level(rects, math.floor(cx + 0.5), math.floor(cy + 0.5))
    ox, oy = rects[level].left, rects[level].top
    ratio = down / (down - 1.0)
    pts = [l - ox, t - oy, r - ox, b - oy]
    for _ in range(level):
        pts = [p * ratio + 0.3 for p in pts]
    return Rect(*(lround(p) for p in pts))


def decode(
    scores: NDArray[np.float32], rects: list[Rect], params: MmodParams, threshold: float = 0.0
) -> list[Detection]:
    """Score map [windows, h, w] of one image -> boxes in that (tiled-pyramid input) image, after NMS."""
    cands: list[tuple[float, Rect]] = []
    for k, (width, height) in enumerate(params.windows):
        rows, cols = np.nonzero(scores[k] > threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            px = float(c * params.map_scale + params.map_offset)
            py = float(r * params.map_scale + params.map_offset)
            hw, hh = (width - 1) / 2, (height - 1) / 2
            box = _to_image(rects, (px - hw, py - hh, px + hw, py + hh), params.pyramid_down)
            cands.append((float(scores[k, r, c]), box))
    cands.sort(key=lambda item: item[0], reverse=True)
    kept: list[tuple[float, Rect]] = []
    for score, box in cands:
        if not any(_overlaps(k[1], box, params.nms_iou, params.nms_covered) for k in kept):
            kept.append((score, box))
    return [(b.left, b.top, b.right, b.bottom, s) for s, b in kept]


def rect_down_2(det: Detection, levels: int) -> Detection:
    """Undo ``levels`` of ``pyramid_up`` (``pyramid_down<2>::rect_down``), rounding like dlib."""
    l, t, r, b, score = det
    pts = [float(l), float(t), float(r), float(b)]
    for _ in range(levels):
        pts = [pts[0] / 2.0 - 1.25, pts[1] / 2.0 - 0.75, pts[2] / 2.0 - 1.25, pts[3] / 2.0 - 0.75]
    lr, tr, rr, br = (lround(p) for p in pts)
    return (lr, tr, rr, br, score)
