"""Photos that are not upright and carry no EXIF orientation: a scanned print, a photo an app re-saved.

The decoder applies EXIF orientation; where there is none, a turned face stays turned, and neither
dlib's landmarks nor YuNet's (which it places as if every face were upright) can align it. Turning
the photo by quarter turns makes it upright. Boxes and points found on the turned photo are mapped
back to the photo as sent: a quarter turn takes an axis-aligned box to an axis-aligned box, so every
box still lies on the photo a person sees.

``quarters`` counts counter-clockwise quarter turns, as :func:`numpy.rot90` does.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from faceward.vision.decode import RGBImage
from faceward.vision.types import Box

TURNS = (1, 3, 2)  # a quarter turn either way, then a half turn (an upside-down scan)


def turned(image: RGBImage, quarters: int) -> RGBImage:
    """``image`` turned counter-clockwise by ``quarters`` quarter turns (a contiguous copy; itself for 0)."""
    if quarters % 4 == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, quarters))


def points_back(points: NDArray[np.float32], quarters: int, height: int, width: int) -> NDArray[np.float32]:
    """Points (N x 2, x then y) of the turned image, in the original's coordinates (its ``height``, ``width``)."""
    x, y = points[..., 0], points[..., 1]
    match quarters % 4:
        case 0:
            return points
        case 1:  # the original's right edge is now on top
            back = (width - y, x)
        case 2:
            back = (width - x, height - y)
        case _:
            back = (y, height - x)
    return np.stack(back, axis=-1).astype(np.float32)


def box_back(box: Box, quarters: int, height: int, width: int) -> Box:
    """A box of the turned image, in the original's coordinates (its ``height``, ``width``)."""
    if quarters % 4 == 0:
        return box
    corners = np.array([[box.left, box.top], [box.right, box.bottom]], dtype=np.float32)
    xs, ys = points_back(corners, quarters, height, width).T.tolist()
    return Box(round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys)))


def described(rotation_cw: int) -> str:
    """How a photo that needed ``rotation_cw`` degrees lay, in words: "lies on its side", "is upside down"."""
    return "is upside down" if rotation_cw % 360 == 180 else "lies on its side"


def clockwise_degrees(quarters: int) -> int:
    """The clockwise turn, in degrees, that :func:`turned` with ``quarters`` applies (what a viewer's "rotate" says)."""
    return (-90 * quarters) % 360


__all__ = ["TURNS", "box_back", "clockwise_degrees", "described", "points_back", "turned"]
