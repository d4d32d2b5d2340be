"""The numpy reproduction of dlib's bilinear resize and tiled pyramid is bit-exact."""

from __future__ import annotations

import dlib
import numpy as np
import pytest

from faceward.vision.onnx.mmod import MmodParams, decode, rect_down_2
from faceward.vision.onnx.pyramid import Rect, pyramid_up, resize_plane_f32, resize_rgb_u8, tiled_rects

SIZES = [(1, 1), (2, 3), (7, 5), (37, 100), (173, 173), (208, 211), (501, 502)]


@pytest.mark.parametrize(("rows", "cols"), SIZES)
def test_rgb_resize_is_dlibs(rows: int, cols: int) -> None:
    rgb = np.random.default_rng(rows * 1000 + cols).integers(0, 256, (250, 250, 3), dtype=np.uint8)
    assert np.array_equal(resize_rgb_u8(rgb, rows, cols), dlib.resize_image(rgb, rows, cols))


@pytest.mark.parametrize(("rows", "cols"), SIZES)
def test_float_resize_is_dlibs(rows: int, cols: int) -> None:
    plane = np.random.default_rng(rows + cols).standard_normal((131, 97)).astype(np.float32)
    assert np.array_equal(resize_plane_f32(plane, rows, cols), dlib.resize_image(plane, rows, cols))


def test_pyramid_up_size() -> None:
    # pyramid_down<2>::rect_up of the image rect, rounded: 2*rows+1 by 2*cols+2.
    assert pyramid_up(np.zeros((250, 240, 3), np.uint8)).shape == (501, 482, 3)


def test_tiled_rects_layout() -> None:
    rects, height, width = tiled_rects(250, 250, down=6, padding=10, outer=11)
    assert rects[0] == Rect(11, 11, 260, 260)
    assert width == 272 and height > 260
    for a, b in zip(rects, rects[1:]):
        assert b.width == int(a.width * 5 / 6) or b.width == a.width * 5 // 6
        assert not (max(a.left, b.left) <= min(a.right, b.right) and max(a.top, b.top) <= min(a.bottom, b.bottom))
    assert all(0 <= r.left and r.right < width and 0 <= r.top and r.bottom < height for r in rects)


def test_decode_applies_nms_and_maps_back() -> None:
    params = MmodParams(((80, 80),), 0.3382761351109955, 1.0, 8, 14, 6)
    rects, _, _ = tiled_rects(250, 250, down=6, padding=10, outer=11)
    scores = np.full((1, 30, 30), -1.0, np.float32)
    scores[0, 10, 10] = 2.0
    scores[0, 10, 11] = 1.0  # overlaps the stronger box: suppressed
    dets = decode(scores, rects, params)
    assert len(dets) == 1
    left, top, right, bottom, confidence = dets[0]
    # centre 8*10+14 = 94 in the tile; 94 -+ 39.5 minus the 11 px border, rounded half away from zero
    assert (left, top, right, bottom) == (44, 44, 123, 123)
    assert confidence == 2.0
    assert rect_down_2(dets[0], 0) == dets[0]
