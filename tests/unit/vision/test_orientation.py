"""Quarter turns: boxes and points found on a turned photo land on the photo as sent."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from faceward.vision.orientation import box_back, clockwise_degrees, described, points_back, turned
from faceward.vision.types import Box


@st.composite
def photo_and_box(draw: st.DrawFn) -> tuple[int, int, Box]:
    height, width = draw(st.integers(2, 40)), draw(st.integers(2, 40))
    left, top = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
    right, bottom = draw(st.integers(left + 1, width)), draw(st.integers(top + 1, height))
    return height, width, Box(left, top, right, bottom)


def _marked_box(image: np.ndarray) -> Box:
    rows, cols = np.nonzero(image[:, :, 0])
    return Box(int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)


@given(photo_and_box(), st.integers(0, 3))
def test_a_box_found_on_the_turned_photo_maps_back_to_the_same_pixels(case: tuple[int, int, Box], quarters: int) -> None:
    height, width, box = case
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[box.top : box.bottom, box.left : box.right] = 255
    seen = _marked_box(turned(image, quarters))  # where a detector would see it
    assert box_back(seen, quarters, height, width) == box


@given(st.integers(0, 3), st.integers(1, 30), st.integers(1, 30), st.integers(0, 29), st.integers(0, 29))
def test_a_pixel_centre_maps_back_to_its_pixel(quarters: int, height: int, width: int, row: int, col: int) -> None:
    row, col = row % height, col % width
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[row, col] = 255
    turned_row, turned_col = (int(v[0]) for v in np.nonzero(turned(image, quarters)[:, :, 0]))
    centre = np.array([[turned_col + 0.5, turned_row + 0.5]], dtype=np.float32)
    assert points_back(centre, quarters, height, width).tolist() == [[col + 0.5, row + 0.5]]


def test_turned_is_contiguous_and_zero_turns_is_the_same_array() -> None:
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert turned(image, 0) is image and turned(image, 4) is image
    assert turned(image, 1).shape == (3, 2, 3) and turned(image, 1).flags.c_contiguous


def test_the_clockwise_turn_is_what_a_viewer_names() -> None:
    # np.rot90 turns counter-clockwise: one quarter turn is 270 degrees clockwise.
    assert [clockwise_degrees(q) for q in range(4)] == [0, 270, 180, 90]


def test_a_turn_is_named_as_a_person_would() -> None:
    assert [described(d) for d in (90, 180, 270)] == ["lies on its side", "is upside down", "lies on its side"]
