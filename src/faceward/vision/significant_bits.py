"""16-bit PNGs whose samples were never scaled to full range, found by their ``sBIT`` chunk.

``sBIT`` states how many bits of each 16-bit sample were significant in the original (10 or 12 for
a sensor). The PNG spec has encoders scale such samples to full range (libpng's writer shifts
them left with bit replication), and then full scale is right. Raw sensor or scientific exports
sometimes store the 12-bit values as they are: read at full scale they are nearly black.

Rule (decision 012's addendum): only where ``sBIT`` gives a colour channel ``s < 16`` bits, every
sample of it is below ``2**s``, and some sample is not a multiple of ``2**(16 - s)`` (which a
scaled image's would be, below ``2**s``) is the image taken as unscaled and stretched to 8 bits
from ``2**s - 1``. An absent, malformed, truncated, duplicated or out-of-range ``sBIT`` is ignored.
Pillow does not read ``sBIT``, so the chunk is read here from the file's bytes.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from numpy.typing import NDArray
from PIL import Image

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Colour type -> how many sBIT bytes it has, and how many of them are colour (alpha is dropped anyway).
# Grey with alpha (4) is left out: Pillow reads it through an unpacker that keeps only the high bytes.
_SBIT_LENGTH = {0: (1, 1), 2: (3, 3), 6: (4, 3)}
# Real files have a handful of chunks before IDAT; a file of thousands is not worth walking.
_MAX_CHUNKS = 256
_LOW_BYTES = {"RGB;16B": "RGB;16L", "RGBA;16B": "RGBA;16L"}  # the "L" unpacker on big-endian data keeps the low byte


def png_significant_bits(data: bytes) -> tuple[int, ...] | None:
    """The significant bits of each colour channel of a 16-bit grey, RGB or RGBA PNG, from its ``sBIT``.

    None when the file is not such a PNG, has no ``sBIT`` before its image data, or has one that
    is malformed (wrong length, a value of 0 or over 16, a bad CRC, a second one, cut short).
    """
    if not data.startswith(_SIGNATURE):
        return None
    pos, colour_type, found = len(_SIGNATURE), -1, None
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > len(data):
            return None
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8:pos + 8 + length]
        if len(body) < length or pos + 12 + length > len(data):
            return None
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        pos += 12 + length
        if colour_type < 0:  # IHDR must come first
            if kind != b"IHDR" or length != 13 or body[8] != 16 or zlib.crc32(kind + body) != crc:
                return None
            colour_type = body[9]
            if colour_type not in _SBIT_LENGTH:
                return None
        elif kind == b"sBIT":
            expected, colours = _SBIT_LENGTH[colour_type]
            if found is not None or length != expected or zlib.crc32(kind + body) != crc:
                return None
            if not all(1 <= bits <= 16 for bits in body):
                return None
            found = tuple(body[:colours])
        elif kind in (b"IDAT", b"IEND"):
            return found
    return None


def full_range(image: Image.Image, data: bytes) -> Image.Image:
    """``image`` (loaded from PNG ``data``), or an 8-bit copy stretched to full range if its
    ``sBIT`` shows its samples were stored unscaled (the module's rule)."""
    if image.format != "PNG" or not (image.mode.startswith("I;16") or image.mode in ("RGB", "RGBA")):
        return image
    bits = png_significant_bits(data)
    if bits is None or all(b == 16 for b in bits):
        return image
    if image.mode.startswith("I;16"):
        samples = np.asarray(image).astype(np.uint16)[:, :, None]
    else:
        high = np.asarray(image)[:, :, : len(bits)]
        # Pillow kept only each sample's high byte: an unscaled image's are below 2**(s - 8). Only
        # then is the file decoded again for the low bytes.
        if any(int(high[:, :, c].max()) >= 1 << max(0, s - 8) for c, s in enumerate(bits)):
            return image
        low = _low_bytes(data, len(bits))
        if low is None or low.shape != high.shape:
            return image
        samples = (high.astype(np.uint16) << np.uint16(8)) | low
    if not _unscaled(samples, bits):
        return image
    channels = [_stretch(samples[:, :, c], s) for c, s in enumerate(bits)]
    return Image.fromarray(channels[0]) if len(channels) == 1 else Image.fromarray(np.dstack(channels))


def _low_bytes(data: bytes, colours: int) -> NDArray[np.uint16] | None:
    with Image.open(io.BytesIO(data), formats=("PNG",)) as again:
        if not again.tile or any(str(tile.args) not in _LOW_BYTES for tile in again.tile):
            return None
        again.tile = [tile._replace(args=_LOW_BYTES[str(tile.args)]) for tile in again.tile]
        again.load()
        return np.asarray(again)[:, :, :colours].astype(np.uint16)


def _unscaled(samples: NDArray[np.uint16], bits: tuple[int, ...]) -> bool:
    below = all(int(samples[:, :, c].max()) < 1 << s for c, s in enumerate(bits))
    return below and any(bool((samples[:, :, c] & ((1 << (16 - s)) - 1)).any()) for c, s in enumerate(bits))


def _stretch(channel: NDArray[np.uint16], bits: int) -> NDArray[np.uint8]:
    top = (1 << bits) - 1
    table = ((np.arange(top + 1, dtype=np.uint32) * 255 + top // 2) // top).astype(np.uint8)
    return table[channel]
