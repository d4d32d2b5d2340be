"""Safe intake: every hostile or malformed input becomes a typed error with a clear message."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from faceward.vision.decode import decode_image, read_image_file
from faceward.vision.errors import CorruptImage, EmptyImage, ImageError, ImageTooLarge, UnsupportedFormat


def encode(fmt: str, size: tuple[int, int] = (64, 48), **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 10)).save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepted_formats_decode_to_rgb(fmt: str) -> None:
    pixels = decode_image(encode(fmt))
    assert pixels.shape == (48, 64, 3) and pixels.dtype == np.uint8


def test_exif_orientation_is_applied_and_metadata_dropped() -> None:
    image = Image.new("RGB", (60, 20), (0, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif.tobytes())
    assert decode_image(buf.getvalue()).shape == (60, 20, 3)


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (b"", EmptyImage, "empty"),
        (b"hello, I am text", UnsupportedFormat, "not a JPEG, PNG or WebP"),
        (b"GIF89a" + b"\x00" * 40, UnsupportedFormat, "GIF"),
        (b"BM" + b"\x00" * 60, UnsupportedFormat, "BMP"),
        (b"%PDF-1.7 polyglot", UnsupportedFormat, "PDF"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 40, UnsupportedFormat,
         "HEIC images are not accepted; send JPEG, PNG or WebP \\(a phone shares its photos as JPEG"),
        (b"\x00\x00\x00\x1cftypavif" + b"\x00" * 40, UnsupportedFormat, "AVIF images"),
        (b"\x00\x00\x00\x18ftypisom" + b"\x00" * 40, UnsupportedFormat, "not a JPEG, PNG or WebP image; send"),
    ],
)
def test_rejects_non_images(data: bytes, error: type[ImageError], words: str) -> None:
    with pytest.raises(error, match=words):
        decode_image(data)


def test_gif_made_by_pillow_is_refused() -> None:
    with pytest.raises(UnsupportedFormat, match="GIF"):
        decode_image(encode("GIF"))


def test_truncated_jpeg_is_corrupt() -> None:
    data = encode("JPEG", (400, 300), quality=95)
    with pytest.raises(CorruptImage):
        decode_image(data[: len(data) // 2])


@pytest.mark.parametrize("kind", ["JPEG", "PNG", "WEBP"])
def test_a_broken_header_of_an_accepted_format_is_corrupt_not_unsupported(kind: str) -> None:
    data = bytearray(encode(kind))
    if kind == "PNG":
        data[29] ^= 0xFF  # IHDR's CRC: Pillow gives up on the file as if it knew no such format
    else:
        data[12:40] = b"\xff" * 28  # the first segment or chunk, mangled
    with pytest.raises(CorruptImage, match=f"the {kind} image is corrupt"):
        decode_image(bytes(data))


def test_pixel_bomb_is_refused_from_the_header() -> None:
    with pytest.raises(ImageTooLarge, match="pixels"):
        decode_image(png_header_only(30000, 30000))


def whole_decode_upload(kind: str, size: tuple[int, int]) -> bytes:
    """A blank ``size`` image as PNG, lossless WebP, progressive or baseline JPEG."""
    buffer = io.BytesIO()
    image = Image.new("RGB", size, (255, 255, 255))
    if kind == "PNG":
        image.save(buffer, format="PNG")
    elif kind == "WEBP":
        image.save(buffer, format="WEBP", lossless=True)
    else:
        image.save(buffer, format="JPEG", progressive=kind == "progressive JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["PNG", "WEBP", "progressive JPEG"])
def test_uploads_decoded_at_full_size_are_held_to_a_4k_frames_pixel_count(kind: str) -> None:
    # At 16.8 MP these cost 6-14x a portrait's search: held to 3840 x 2160 = 8,294,400 pixels, any shape,
    # refused from the header (decision 036). 13801 x 601 is 8,294,401: one pixel over.
    from faceward.vision.decode import WHOLE_DECODE_PIXELS, decode_reduced

    assert WHOLE_DECODE_PIXELS == 3840 * 2160 == 8_294_400 and 13801 * 601 == WHOLE_DECODE_PIXELS + 1
    at_limit = decode_reduced(whole_decode_upload(kind, (3840, 2160)), min_long_side=1600)
    assert at_limit.size == (3840, 2160) and at_limit.reduction == 2.0
    with pytest.raises(ImageTooLarge, match=rf"this {kind} is 13801x601 pixels.*at most 8,294,400 pixels "
                                            r"\(a 3840x2160 4K frame, any shape\).*as a baseline JPEG"):
        decode_reduced(whole_decode_upload(kind, (13801, 601)), min_long_side=1600)


def test_the_limit_is_a_pixel_count_and_a_baseline_jpeg_may_pass_it() -> None:
    from faceward.vision.decode import decode_reduced

    assert decode_reduced(whole_decode_upload("PNG", (14400, 576)), min_long_side=1600).size == (14400, 576)
    with pytest.raises(ImageTooLarge, match="this PNG is 3841x2160"):
        decode_image(png_header_only(3841, 2160))
    for size in ((13801, 601), (6000, 3000)):  # one pixel over, and 18 MP: decoded reduced by DCT scaling
        assert decode_reduced(whole_decode_upload("baseline JPEG", size), min_long_side=1600).size == size


def scan_bomb(scans: int) -> bytes:
    """A small progressive JPEG whose last scan is repeated until it has ``scans`` scans (decoders accept them)."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(buffer, format="JPEG", progressive=True)
    data = buffer.getvalue()
    last, end = data.rfind(b"\xff\xda"), data.rfind(b"\xff\xd9")
    repeats = scans - data.count(b"\xff\xda")
    return data[:end] + data[last:end] * repeats + data[end:]


def test_a_progressive_jpeg_with_too_many_scans_is_refused_before_decoding() -> None:
    # Each scan walks every block: 10,000 empty scans in a 1 MB, 12 MP file took 1.9 s to decode.
    assert decode_image(scan_bomb(100)).shape == (64, 64, 3)  # a hundred still decode
    with pytest.raises(CorruptImage, match="101 scans; at most 100"):
        decode_image(scan_bomb(101))


def test_byte_cap() -> None:
    with pytest.raises(ImageTooLarge, match="limit"):
        decode_image(encode("PNG"), max_bytes=10)


def test_file_extension_must_match_content(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(encode("JPEG"))
    with pytest.raises(UnsupportedFormat, match="extension says PNG"):
        read_image_file(path)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(UnsupportedFormat, match="notes.jpg"):
        read_image_file(text)
    with pytest.raises(UnsupportedFormat, match=r"\.gif"):
        read_image_file(tmp_path / "x.gif")


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_escape_as_other_errors(data: bytes) -> None:
    try:
        decode_image(data)
    except ImageError:
        pass


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=4000), st.binary(min_size=1, max_size=64))
def test_mangled_real_jpeg_is_decoded_or_refused(cut: int, junk: bytes) -> None:
    data = encode("JPEG", (120, 90))
    mangled = data[:cut] + junk + data[cut + len(junk):]
    try:
        pixels = decode_image(mangled)
        assert pixels.ndim == 3
    except ImageError:
        pass


def test_a_large_jpeg_is_decoded_reduced_by_dct_scaling() -> None:
    import io

    import numpy as np
    from PIL import Image

    from faceward.vision.decode import decode_reduced

    pixels = np.zeros((1200, 1800, 3), np.uint8)
    pixels[:, :900] = 200
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    full = decode_reduced(data)
    assert full.reduction == 1.0 and full.pixels.shape == (1200, 1800, 3) and full.size == (1800, 1200)
    reduced = decode_reduced(data, min_long_side=400)
    assert reduced.reduction == 4.0 and reduced.pixels.shape == (300, 450, 3) and reduced.size == (1800, 1200)
    assert abs(int(reduced.pixels[150, 100, 0]) - 200) < 4 and reduced.pixels[150, 350, 0] < 4
    # never below the long side asked for
    assert max(decode_reduced(data, min_long_side=1000).pixels.shape) >= 1000


@pytest.mark.parametrize("kind", ["png", "palette png", "webp", "rgba webp"])
def test_a_large_lossless_image_is_reduced_before_it_becomes_an_array(kind: str) -> None:
    # No DCT scaling for PNG or WebP: decoded whole, then box-reduced by the same factors as a JPEG, so a
    # 40 MP file of a few hundred KB costs no more than its decode. Upright by EXIF, as any upload.
    from faceward.vision.decode import decode_reduced

    pixels = np.zeros((1200, 1800, 3), np.uint8)
    pixels[:, :900] = 200
    image = Image.fromarray(pixels)
    if kind == "palette png":
        image = image.convert("P", palette=Image.Palette.ADAPTIVE)
    if kind == "rgba webp":
        image = image.convert("RGBA")
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    buffer = io.BytesIO()
    image.save(buffer, format="PNG" if "png" in kind else "WEBP", lossless=True, exif=exif)
    reduced = decode_reduced(buffer.getvalue(), min_long_side=400)
    assert reduced.reduction == 4.0 and reduced.size == (1200, 1800)  # upright: the axes swapped
    assert reduced.pixels.shape == (450, 300, 3)
    assert abs(int(reduced.pixels[50, 150, 0]) - 200) < 4 and reduced.pixels[400, 150, 0] < 4  # the grey half on top
    whole = decode_reduced(buffer.getvalue())
    assert whole.reduction == 1.0 and whole.pixels.shape == (1800, 1200, 3)
    assert np.abs(whole.pixels[::4, ::4].astype(int) - reduced.pixels.astype(int)).max() <= 4


def test_a_phones_multi_picture_jpeg_is_decoded_reduced_too() -> None:
    # MPO: the photo, then a gain map or depth map (what recent phones write as "JPEG"). Its first
    # picture is the photo; decoding it whole cost a 12 MP decode on every search.
    from faceward.vision.decode import decode_reduced

    pixels = np.zeros((1200, 1800, 3), np.uint8)
    pixels[:, :900] = 200
    photo = Image.fromarray(pixels)
    mpo, jpeg = io.BytesIO(), io.BytesIO()
    photo.save(mpo, format="MPO", save_all=True, append_images=[photo.resize((180, 120))])
    photo.save(jpeg, format="JPEG")
    assert Image.open(io.BytesIO(mpo.getvalue())).format == "MPO"
    reduced = decode_reduced(mpo.getvalue(), min_long_side=400)
    assert reduced.reduction == 4.0 and reduced.pixels.shape == (300, 450, 3) and reduced.size == (1800, 1200)
    assert np.array_equal(reduced.pixels, decode_reduced(jpeg.getvalue(), min_long_side=400).pixels)


def test_a_16_bit_grey_png_keeps_its_tones() -> None:
    # Pillow's own RGB conversion clips 16-bit samples at 255: a scanner's grey portrait came out white.
    tones = np.linspace(0, 255, 64 * 48).reshape(48, 64)
    buf = io.BytesIO()
    Image.fromarray((tones * 257).astype(np.uint16)).save(buf, format="PNG")
    assert Image.open(io.BytesIO(buf.getvalue())).mode == "I;16"
    pixels = decode_image(buf.getvalue())
    assert pixels.shape == (48, 64, 3) and pixels.dtype == np.uint8
    assert np.abs(pixels[:, :, 0].astype(float) - tones).max() <= 1.0
    assert (pixels[:, :, 0] == pixels[:, :, 2]).all()
