"""dlib's image pyramids and bilinear resizing, reproduced bit for bit in numpy.

The MMOD detector sees a *tiled* pyramid (``pyramid_down<6>``) that dlib builds
with its SSE bilinear resize: four columns at a time in float32 with a float32
running x coordinate, then a scalar tail in double. Reproducing those
roundings exactly is what makes the converted detector's scores match dlib's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F32 = np.float32


@dataclass(frozen=True, slots=True)
class Rect:
    """An inclusive integer rectangle, like ``dlib::rectangle``."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left + 1

    @property
    def height(self) -> int:
        return self.bottom - self.top + 1


def _rows(n_in: int, n_out: int) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    scale = (n_in - 1) / max(n_out - 1, 1)
    # y starts at -scale and accumulates in double, one add per row.
    y = np.add.accumulate(np.array([-scale] + [scale] * n_out, dtype=np.float64))[1:]
    top = np.floor(y).astype(np.int64)
    return top, np.minimum(top + 1, n_in - 1), y - top


@dataclass(frozen=True, slots=True)
class _Cols:
    simd: int  # columns [0, simd) use the float32 SSE path
    left: NDArray[np.int64]
    right: NDArray[np.int64]
    lr32: NDArray[np.float32]  # SSE path fraction
    lr64: NDArray[np.float64]  # tail path fraction (double)


def _cols(n_in: int, n_out: int) -> _Cols:
    scale = (n_in - 1) / max(n_out - 1, 1)
    groups = (n_out + 3) // 4 + 1
    x0 = -4 * scale
    lanes = np.array([x0, x0 + scale, x0 + 2 * scale, x0 + 3 * scale], dtype=np.float64).astype(F32)
    steps = np.full((groups, 4), F32(4 * scale), dtype=F32)
    xs = np.add.accumulate(np.vstack([lanes[None, :], steps]), axis=0, dtype=F32)[1:]  # float32 running sum
    left = np.trunc(xs).astype(np.int64)  # _mm_cvttps_epi32
    stop = np.nonzero(left[:, 3] + 1 >= n_in)[0]
    simd = 4 * int(stop[0]) if len(stop) else 4 * groups
    simd = min(simd, n_out)
    left_s = left.reshape(-1)[:simd]
    lr_s = (xs.reshape(-1)[:simd] - left_s.astype(F32)).astype(F32)
    # Scalar tail: x restarts in double from the column where SSE stopped.
    tail = n_out - simd
    xt = np.add.accumulate(np.array([-scale + simd * scale] + [scale] * tail, dtype=np.float64))[1:]
    left_t = np.floor(xt).astype(np.int64)
    lefts = np.concatenate([left_s, left_t])
    rights = np.concatenate([left_s + 1, np.minimum(left_t + 1, n_in - 1)])
    lr32 = np.concatenate([lr_s, (xt - left_t).astype(F32)])
    lr64 = np.concatenate([lr_s.astype(np.float64), xt - left_t])
    return _Cols(simd, lefts, rights, lr32, lr64)


def resize_plane_f32(src: NDArray[np.float32], out_h: int, out_w: int) -> NDArray[np.float32]:
    """dlib ``resize_image`` of float images ([..., H, W], bilinear), as ``tt::resize_bilinear`` runs it."""
    top, bottom, tb = _rows(src.shape[-2], out_h)
    cols = _cols(src.shape[-1], out_w)
    s = cols.simd
    tb32, itb32 = tb.astype(F32)[:, None], (1 - tb).astype(F32)[:, None]
    lr, ilr = cols.lr32[None, :s], (F32(1) - cols.lr32[None, :s]).astype(F32)
    t_rows, b_rows = src[..., top, :], src[..., bottom, :]
    tl, tr = t_rows[..., cols.left[:s]], t_rows[..., cols.right[:s]]
    bl, br = b_rows[..., cols.left[:s]], b_rows[..., cols.right[:s]]
    out = np.empty((*src.shape[:-2], out_h, out_w), dtype=F32)
    out[..., :s] = ((itb32 * ilr) * tl + (itb32 * lr) * tr) + (tb32 * ilr) * bl + (tb32 * lr) * br
    if s < out_w:
        l, r = cols.left[s:], cols.right[s:]
        lr_t = cols.lr32[None, s:]
        ilr_t = F32(1) - lr_t
        upper = (ilr_t * t_rows[..., l] + lr_t * t_rows[..., r]).astype(np.float64)
        lower = (ilr_t * b_rows[..., l] + lr_t * b_rows[..., r]).astype(np.float64)
        out[..., s:] = ((1 - tb)[:, None] * upper + tb[:, None] * lower).astype(F32)
    return out


def resize_rgb_u8(src: NDArray[np.uint8], out_h: int, out_w: int) -> NDArray[np.uint8]:
    """dlib ``resize_image`` of an RGB image ([H, W, 3] uint8, bilinear, truncating)."""
    planes = np.moveaxis(src, -1, 0).astype(F32)
    top, bottom, tb = _rows(src.shape[0], out_h)
    cols = _cols(src.shape[1], out_w)
    s = cols.simd
    tb32, itb32 = tb.astype(F32)[:, None], (1 - tb).astype(F32)[:, None]
    lr, ilr = cols.lr32[None, :s], (F32(1) - cols.lr32[None, :s]).astype(F32)
    t_rows, b_rows = planes[:, top, :], planes[:, bottom, :]
    out = np.empty((3, out_h, out_w), dtype=np.uint8)
    simd = ((itb32 * ilr) * t_rows[..., cols.left[:s]] + (itb32 * lr) * t_rows[..., cols.right[:s]]) + (
        tb32 * ilr
    ) * b_rows[..., cols.left[:s]] + (tb32 * lr) * b_rows[..., cols.right[:s]]
    out[..., :s] = np.trunc(simd).astype(np.uint8)
    if s < out_w:
        l, r = cols.left[s:], cols.right[s:]
        lr_t = cols.lr64[None, s:]
        t64, b64 = t_rows.astype(np.float64), b_rows.astype(np.float64)
        upper = (1 - lr_t) * t64[..., l] + lr_t * t64[..., r]
        lower = (1 - lr_t) * b64[..., l] + lr_t * b64[..., r]
        out[..., s:] = np.trunc((1 - tb)[:, None] * upper + tb[:, None] * lower).astype(np.uint8)
    return np.ascontiguousarray(np.moveaxis(out, 0, -1))


def pyramid_up(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``dlib::pyramid_up(img)`` with ``pyramid_down<2>``: about 2x, sized by ``rect_up``."""
    rows, cols = rgb.shape[:2]
    # rect_up of (0,0,cols-1,rows-1): corners (p + (1.25, 0.75)) * 2, rounded half away from zero.
    right = lround((cols - 1 + 1.25) * 2)
    bottom = lround((rows - 1 + 0.75) * 2)
    return resize_rgb_u8(rgb, bottom + 1, right + 1)


def lround(v: float) -> int:
    return int(math.floor(v + 0.5)) if v >= 0 else -int(math.floor(-v + 0.5))


def tiled_rects(rows: int, cols: int, down: int, padding: int, outer: int) -> tuple[list[Rect], int, int]:
    """Where each pyramid level sits in dlib's tiled image, and that image's size.

    ``down`` is N of ``pyramid_down<N>`` (levels shrink by (N-1)/N).
    """
    sizes = [(cols, rows)]
    rate = (down - 1.0) / down
    nr, nc = rows, cols
    while True:
        nr, nc = math.floor(rate * nr), math.floor(rate * nc)
        if nr * nc == 0 or nr < 5:
            break
        sizes.append((nc, nr))
    total = sum(h + padding for _, h in sizes) - 2 * padding
    height, prev_width = 0, 0
    for w, h in sizes:
        if w <= sizes[0][0] - prev_width - padding and (height - sizes[0][1]) * 2 >= total - sizes[0][1]:
            break
        height += h + padding
        prev_width = w
    height -= padding
    width = sizes[0][0]
    rects: list[Rect] = []
    y, i = outer, 0
    while y < height + outer and i < len(sizes):
        w, h = sizes[i]
        rects.append(Rect(outer, y, outer + w - 1, y + h - 1))
        y += h + padding
        i += 1
    y -= padding
    first = rects[0]
    while i < len(sizes):
        w, h = sizes[i]
        rect = Rect(outer + width - w, y - h, outer + width - 1, y - 1)
        if _intersects(first, rect):
            break  # would overlap the full-size image
        rects.append(rect)
        y -= h + padding
        i += 1
    return rects, height + 2 * outer, width + 2 * outer


def _intersects(a: Rect, b: Rect) -> bool:
    return max(a.left, b.left) <= min(a.right, b.right) and max(a.top, b.top) <= min(a.bottom, b.bottom)


def tiled_pyramid(
    rgb: NDArray[np.uint8], avg: tuple[float, float, float], *, down: int, padding: int, outer: int
) -> tuple[NDArray[np.float32], list[Rect]]:
    """dlib's ``input_rgb_image_pyramid::to_tensor`` for one image: float32 [3, H, W] and level rects."""
    rows, cols = rgb.shape[:2]
    rects, height, width = tiled_rects(rows, cols, down, padding, outer)
    out = np.zeros((3, height, width), dtype=F32)
    first = rects[0]
    means = np.array(avg, dtype=F32).reshape(3, 1, 1)
    out[:, first.top : first.bottom + 1, first.left : first.right + 1] = (
        np.moveaxis(rgb, -1, 0).astype(F32) - means
    ) / F32(256)
    for prev, rect in zip(rects, rects[1:]):
        src = out[:, prev.top : prev.bottom + 1, prev.left : prev.right + 1]
        out[:, rect.top : rect.bottom + 1, rect.left : rect.right + 1] = resize_plane_f32(src, rect.height, rect.width)
    return out, rects
