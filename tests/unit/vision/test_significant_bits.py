"""16-bit PNGs with sBIT: unscaled samples are stretched to full range, scaled ones kept, bad chunks ignored."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from PIL import Image, PngImagePlugin

from faceward.vision.decode import decode_image, decode_reduced
from faceward.vision.errors import ImageError
from faceward.vision.significant_bits import png_significant_bits

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, grey and alpha, RGB, RGBA)
TONES = np.linspace(0.0, 1.0, 48 * 64).reshape(48, 64)  # a ramp from black to white


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def png16(samples: NDArray[np.uint16], before_idat: bytes = b"", after_idat: bytes = b"",
          interlaced: bool = False) -> bytes:
    """A 16-bit PNG written by hand (Pillow writes 16-bit grey only), with extra chunks around IDAT."""
    rows = samples if samples.ndim == 3 else samples[:, :, None]
    height, width, channels = rows.shape
    ihdr = struct.pack(">IIBBBBB", width, height, 16, COLOUR_TYPE[channels], 0, 0, int(interlaced))
    passes = [rows[y0::dy, x0::dx] for x0, y0, dx, dy in ADAM7] if interlaced else [rows]
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for image in passes for row in image)
    return (SIGNATURE + chunk(b"IHDR", ihdr) + before_idat + chunk(b"IDAT", zlib.compress(raw)) + after_idat
            + chunk(b"IEND", b""))


def unscaled(bits: int) -> NDArray[np.uint16]:
    return np.round(TONES * ((1 << bits) - 1)).astype(np.uint16)


def scaled(bits: int) -> NDArray[np.uint16]:
    """As a conforming encoder writes them (libpng's png_do_shift): shifted left, the top bits repeated."""
    values = unscaled(bits).astype(np.uint32)
    return (((values << (16 - bits)) | (values >> (2 * bits - 16))) & 0xFFFF).astype(np.uint16)


def colour(grey: NDArray[np.uint16], bits: int, alpha: bool = False) -> NDArray[np.uint16]:
    """Three different channels from one ramp (the ramp, its reverse, half of it), optionally opaque alpha."""
    top = (1 << bits) - 1
    planes = [grey, (top - grey.astype(np.int32)).astype(np.uint16), grey // 2]
    if alpha:
        planes.append(np.full_like(grey, 0xFFFF))
    return np.dstack(planes)


def sbit(*bits: int) -> bytes:
    return chunk(b"sBIT", bytes(bits))


@pytest.mark.parametrize("bits", [10, 12])
def test_an_unscaled_grey_png_is_stretched_to_full_range(bits: int) -> None:
    # A raw sensor export: 12-bit values stored as they are in 16 bits decoded nearly black (at most 15).
    info = PngImagePlugin.PngInfo()
    info.add(b"sBIT", bytes([bits]))
    buffer = io.BytesIO()
    Image.fromarray(unscaled(bits)).save(buffer, format="PNG", pnginfo=info)  # Pillow writes it before IDAT
    data = buffer.getvalue()
    assert png_significant_bits(data) == (bits,)
    pixels = decode_image(data)
    assert np.abs(pixels[:, :, 0] - TONES * 255).max() <= 1.0 and (pixels[:, :, 0] == pixels[:, :, 2]).all()
    assert decode_image(png16(unscaled(bits)))[:, :, 0].max() < 16  # without sBIT: full scale, as before
    reduced = decode_reduced(data, min_long_side=16)  # now 8-bit, so reducible like any PNG
    assert reduced.reduction == 2.0 and np.abs(reduced.pixels[:, :, 0] - TONES[::2, ::2] * 255).max() <= 4


@pytest.mark.parametrize(("alpha", "interlaced"), [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("bits", [10, 12])
def test_an_unscaled_colour_png_is_stretched_channel_by_channel(bits: int, alpha: bool, interlaced: bool) -> None:
    # Pillow keeps only each sample's high byte of 16-bit colour; the low bytes are decoded once more.
    samples = colour(unscaled(bits), bits, alpha)
    pixels = decode_image(png16(samples, sbit(*[bits] * (4 if alpha else 3)), interlaced=interlaced))
    expected = colour(unscaled(bits), bits).astype(float) * 255 / ((1 << bits) - 1)
    assert np.abs(pixels - expected).max() <= 0.5 + 1e-9


@pytest.mark.parametrize("bits", [10, 12])
@pytest.mark.parametrize("channels", [1, 3])
def test_a_scaled_png_with_sbit_keeps_full_scale(bits: int, channels: int) -> None:
    samples = scaled(bits) if channels == 1 else colour(scaled(bits), 16)
    marked = decode_image(png16(samples, sbit(*[bits] * channels)))
    assert np.array_equal(marked, decode_image(png16(samples)))
    assert np.abs(marked[:, :, 0] - TONES * 255).max() <= 1.0


@pytest.mark.parametrize("channels", [1, 3])
def test_a_dark_scaled_png_is_not_mistaken_for_an_unscaled_one(channels: int) -> None:
    # Scaled, but dark: every sample below 2**12, as an unscaled image's would be. They are all multiples
    # of 2**4, as a scaled image's are there, so they are left at full scale (still dark).
    dark = (scaled(12).astype(np.uint32) // 20 // 16 * 16).astype(np.uint16)
    assert dark.max() < 4096
    samples = dark if channels == 1 else np.dstack([dark, dark // 32 * 16, dark])
    marked = decode_image(png16(samples, sbit(*[12] * channels)))
    assert np.array_equal(marked, decode_image(png16(samples))) and marked.max() < 16


@pytest.mark.parametrize(
    ("case", "make"),
    [
        ("0 bits", lambda s: png16(s, sbit(0))),
        ("17 bits", lambda s: png16(s, sbit(17))),
        ("255 bits", lambda s: png16(s, sbit(255))),
        ("16 bits", lambda s: png16(s, sbit(16))),
        ("too long", lambda s: png16(s, sbit(12, 12))),
        ("empty", lambda s: png16(s, chunk(b"sBIT", b""))),
        ("after IDAT", lambda s: png16(s, after_idat=sbit(12))),
        ("twice", lambda s: png16(s, sbit(12) + sbit(10))),
        ("bad CRC", lambda s: png16(s, sbit(12)[:-1] + b"\x00")),
        ("length past the file", lambda s: png16(s, struct.pack(">I", 1 << 30) + b"sBIT\x0c")),
        ("cut inside the chunk", lambda s: png16(s)[:33] + struct.pack(">I", 1) + b"sBIT"),
    ],
)
def test_a_bad_or_idle_sbit_is_ignored_or_the_file_refused(case: str, make: object) -> None:
    assert callable(make)
    data = make(unscaled(12))
    assert png_significant_bits(data) == ((16,) if case == "16 bits" else None)  # 16 of 16: nothing to stretch
    try:
        pixels = decode_image(data)
    except ImageError:
        return  # Pillow refused the file itself (a bad CRC, a cut chunk): a 4xx, never a 500
    assert np.array_equal(pixels, decode_image(png16(unscaled(12))))  # full scale, as without sBIT


def test_sbit_is_read_only_from_16_bit_grey_rgb_and_rgba_pngs() -> None:
    rgb8 = io.BytesIO()
    info = PngImagePlugin.PngInfo()
    info.add(b"sBIT", b"\x05\x05\x05")
    Image.new("RGB", (8, 8), (10, 20, 30)).save(rgb8, format="PNG", pnginfo=info)
    assert png_significant_bits(rgb8.getvalue()) is None
    assert decode_image(rgb8.getvalue())[0, 0].tolist() == [10, 20, 30]
    # 16-bit grey with alpha: Pillow keeps only the high bytes and has no way to the low ones, so full scale.
    grey_alpha = png16(np.dstack([unscaled(12), np.full_like(unscaled(12), 0xFFFF)]), sbit(12, 16))
    assert png_significant_bits(grey_alpha) is None
    assert decode_image(grey_alpha)[:, :, 0].max() < 16
    assert png_significant_bits(b"") is None and png_significant_bits(SIGNATURE) is None


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=6))
def test_any_sbit_payload_gives_full_scale_or_the_stretch_it_states(payload: bytes) -> None:
    samples = unscaled(12)
    data = png16(samples, chunk(b"sBIT", payload))
    pixels = decode_image(data)[:, :, 0]
    if len(payload) == 1 and 12 <= payload[0] < 16:
        top = (1 << payload[0]) - 1
        assert np.abs(pixels - samples.astype(float) * 255 / top).max() <= 0.5 + 1e-9
    else:  # malformed, 16 bits, or fewer than 12 (the samples reach past 2**s: not unscaled at s bits)
        assert np.array_equal(pixels, (samples >> 8).astype(np.uint8))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_the_chunk_reader_never_raises(tail: bytes) -> None:
    valid = png16(unscaled(12)[:4, :4], sbit(12))
    for data in (SIGNATURE + tail, valid[: len(tail)], valid[:33] + tail):
        bits = png_significant_bits(data)
        assert bits is None or (len(bits) == 1 and 1 <= bits[0] <= 16)
