"""Working copies: the same photo at the size a detector was trained for.

Detectors run on a copy whose long side is about :data:`WORKING_SIDE`, so
their cost follows the face, not the upload; boxes and landmarks are scaled
back to the original's coordinates.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from faceward.vision.decode import RGBImage

WORKING_SIDE = 640  # YuNet was trained on faces of ~10-300 px; a portrait's face stays within that at 640
# Uploads are decoded no smaller than this (JPEG DCT scaling: a 12 MP photo is decoded at half size),
# and landmarks and chips are cut from that copy: a face of 100 px in the original still gives 50 px.
ANALYSIS_SIDE = 1600


def shrink_factor(height: int, width: int, long_side: int) -> float:
    """How many original pixels one working-copy pixel spans (1.0: the image is already small enough)."""
    return max(1.0, max(height, width) / long_side)


def resized(image: RGBImage, factor: float) -> RGBImage:
    """``image`` shrunk by ``factor`` (>= 1) with an area-averaging filter; itself when ``factor`` is 1."""
    if factor <= 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    # reducing_gap=1: a fast integer box reduction by floor(factor) first, then a bilinear step of
    # less than 2x on the small image; no aliasing on 10x shrinks, ~3x cheaper than reducing_gap=2.
    small = Image.fromarray(image).resize(size, Image.Resampling.BILINEAR, reducing_gap=1.0)
    return np.ascontiguousarray(np.asarray(small, dtype=np.uint8))


def working_copy(image: RGBImage, long_side: int = WORKING_SIDE) -> tuple[RGBImage, float]:
    """``image`` shrunk so that its long side is at most ``long_side``, and the factor it was shrunk by."""
    height, width = image.shape[:2]
    factor = shrink_factor(height, width, long_side)
    small = resized(image, factor)
    # The exact factor per axis after rounding; the mean is within 0.1% of both.
    exact = (image.shape[1] / small.shape[1] + image.shape[0] / small.shape[0]) / 2
    return small, exact
