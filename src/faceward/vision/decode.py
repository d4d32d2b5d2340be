"""Safe image intake: bytes in, an RGB ``uint8`` array out, or a typed error.

Only JPEG, PNG and WebP parsers are ever run on untrusted bytes (Pillow's
``formats=``). The pixel cap is checked from the header, before any pixel is
decoded, which is what stops decompression bombs. EXIF orientation is applied
and then every byte of metadata is gone, because only pixels leave here.

Analysis rarely needs every pixel of a phone photo: :func:`decode_reduced`
asks the JPEG decoder for a reduced image (DCT scaling: 1/2, 1/4 or 1/8 of the
size, for a fraction of the work) no smaller than the analysis needs, and says
by how much it was reduced, so boxes can be given in the original's pixels.
PNG and WebP have no such scaling: a large one is decoded whole, then reduced
by the same factors (a box filter, in Pillow) before it becomes an array, so
no full-size copy travels further than the decoder. A 16-bit PNG whose ``sBIT``
shows samples stored unscaled is stretched to full range first (:mod:`.significant_bits`).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFile, UnidentifiedImageError

from faceward.vision.errors import CorruptImage, EmptyImage, ImageTooLarge, UnsupportedFormat
from faceward.vision.significant_bits import full_range

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")
EXTENSIONS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}
DEFAULT_MAX_BYTES = 15 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
# PNG, WebP and progressive JPEG cost their full size to decode (no DCT scaling for the first two; every
# coefficient buffered for the last): at 16.8 MP one cost 6-14x a portrait's search. Held to a 4K UHD
# frame's pixel count, any shape: the largest screenshot or video still people send (decision 036).
# A baseline JPEG may have up to the general pixel cap: it is decoded reduced.
WHOLE_DECODE_PIXELS = 3840 * 2160
# A progressive JPEG's decoder walks every block once per scan: a 1 MB file of 10,000 empty scans cost
# 1.9 s (90 portrait searches), 15 MB of them minutes. Encoders write 1 scan (baseline) or about 10;
# libjpeg-turbo documents the attack and a scan limit (djpeg -maxscans) as its guard.
MAX_JPEG_SCANS = 100

_MAGIC = (
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"<svg", "SVG"),
    (b"<?xml", "XML/SVG"),
)

RGBImage = NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Decoded:
    """Pixels, possibly decoded reduced: one pixel spans ``reduction`` original pixels each way.

    ``size`` is the upright original's ``(width, height)``.
    """

    pixels: RGBImage
    reduction: float
    size: tuple[int, int]


# ISO base media files (``....ftyp<brand>``): what a phone camera writes by default.
PHONE_FORMATS = ("HEIC", "HEIF", "AVIF")
_FTYP_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"hevc": "HEIC", b"heim": "HEIC", b"heis": "HEIC",
                b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF", b"avis": "AVIF"}


def phone_format_hint(name: str | None) -> str:
    """For a phone camera's format (HEIC, HEIF, AVIF), how to get a JPEG instead; else nothing."""
    if name is None or name.upper() not in PHONE_FORMATS:
        return ""
    return " (a phone shares its photos as JPEG, or takes them so with its camera's most compatible format)"


def _sniff(data: bytes) -> str | None:
    if data[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(data[8:12])
    head = data[:16].lstrip()
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


# Modes whose channels Image.reduce may average as they are; a palette's indices or 1-bit pixels are
# made RGB first, and 16-bit grey (which Image.reduce refuses) is left whole for _rgb to scale.
REDUCIBLE_MODES = ("RGB", "RGBA", "RGBX", "L", "LA", "CMYK")
SIXTEEN_BIT_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# EXIF orientation -> the transpose that makes the image upright (as ImageOps.exif_transpose does it).
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}


def _reduced(image: Image.Image, min_long_side: int | None) -> Image.Image:
    """``image`` shrunk by 2, 4 or 8 (the largest whose long side stays at least ``min_long_side``), or itself.

    A JPEG (baseline or progressive) comes here already DCT-scaled, so only a large PNG or WebP is
    shrunk: its full-size array would cost more to copy and resize than the decode itself.
    """
    factor = 1
    while min_long_side and factor < 8 and max(image.size) > 2 * factor * min_long_side:
        factor *= 2
    if factor == 1 or image.mode in SIXTEEN_BIT_GREY:
        return image
    return (image if image.mode in REDUCIBLE_MODES else image.convert("RGB")).reduce(factor)


def _rgb(image: Image.Image) -> RGBImage:
    """The image's pixels as 8-bit RGB. Pillow's own conversion clips 16-bit grey (a PNG a scanner or
    a raw developer writes) at 255, which turns a face white: such pixels are scaled down instead."""
    if image.mode in SIXTEEN_BIT_GREY:
        grey = np.asarray(image).astype(np.uint32) >> 8  # 16 bits per sample, whatever Pillow stores them in
        return np.ascontiguousarray(np.repeat(np.minimum(grey, 255).astype(np.uint8)[:, :, None], 3, axis=2))
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def decode_image(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
) -> RGBImage:
    """Decode ``data`` into an ``H x W x 3`` RGB array with orientation applied.

    Raises :class:`EmptyImage`, :class:`ImageTooLarge`, :class:`UnsupportedFormat`
    or :class:`CorruptImage`; never a Pillow exception.
    """
    return decode_reduced(data, max_bytes=max_bytes, max_pixels=max_pixels).pixels


def decode_reduced(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS,
    min_long_side: int | None = None,
) -> Decoded:
    """:func:`decode_image`, but an image whose long side exceeds ``min_long_side`` may come back reduced.

    Returns the pixels, the upright original's size and the reduction: how many
    original pixels one returned pixel spans (about 1, 2, 4 or 8; 1.0 when ``min_long_side`` is None).
    The returned long side is at least ``min_long_side`` whenever the original's is. A PNG or WebP
    is decoded whole and then reduced the same way (:func:`_reduced`).
    """
    if not data:
        raise EmptyImage("the image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ImageTooLarge(f"the image is {len(data)} bytes; the limit is {max_bytes}")
    # Truncated files must fail, not decode half-grey.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except UnidentifiedImageError:
        if (claimed := _format_of(data)) != "unknown":  # Pillow gives up on a broken header (a bad CRC) this way too
            raise CorruptImage(f"the {claimed} image is corrupt: its header could not be read") from None
        found = _sniff(data)
        what = f"{found} images are not accepted" if found else "this file is not a JPEG, PNG or WebP image"
        raise UnsupportedFormat(f"{what}; send JPEG, PNG or WebP{phone_format_hint(found)}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge("the image declares too many pixels (decompression bomb?)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise CorruptImage(f"the image header is malformed: {exc}") from None
    with image:
        width, height = image.size
        if width <= 0 or height <= 0:
            raise CorruptImage("the image has no pixels")
        if width * height > max_pixels:
            raise ImageTooLarge(f"the image is {width}x{height} pixels; the limit is {max_pixels} pixels")
        jpeg = image.format in ("JPEG", "MPO")
        scans = data.count(b"\xff\xda") if jpeg else 0  # SOS markers: 0xFF 0xDA cannot occur in coded data
        if scans > MAX_JPEG_SCANS:
            raise CorruptImage(f"the JPEG has {scans} scans; at most {MAX_JPEG_SCANS} are accepted "
                               "(a photo has 1, or about 10 when progressive)")
        progressive = jpeg and bool(image.info.get("progressive"))
        if (progressive or not jpeg) and width * height > WHOLE_DECODE_PIXELS:
            kind = "progressive JPEG" if progressive else image.format
            raise ImageTooLarge(
                f"this {kind} is {width}x{height} pixels; PNG, WebP and progressive JPEG images cost their full size "
                f"to decode, so they may have at most {WHOLE_DECODE_PIXELS:,} pixels (a 3840x2160 4K frame, any "
                f"shape): send a larger photo as a baseline JPEG, as cameras and phones write them (up to "
                f"{max_pixels:,} pixels)"
            )
        # MPO: a JPEG with more pictures after it (a phone's HDR gain map or depth map); the first is the photo.
        if min_long_side and jpeg and max(width, height) > 2 * min_long_side:
            fraction = min_long_side / max(width, height)
            # draft() picks the largest DCT scale whose result is still at least the size asked for.
            image.draft("RGB", (max(1, int(width * fraction + 0.999)), max(1, int(height * fraction + 0.999))))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image.load()
                orientation = image.getexif().get(0x0112, 1)
                small = _reduced(full_range(image, data), min_long_side)
                reduction = width / small.size[0]
                turn = _UPRIGHT.get(orientation)
                pixels = _rgb(small.transpose(turn) if turn is not None else small)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageTooLarge("the image expands past the pixel limit") from None
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise CorruptImage(f"the image is truncated or corrupt: {exc}") from None
        except MemoryError:
            raise ImageTooLarge("the image is too large to decode") from None
    turned = orientation in (5, 6, 7, 8)  # EXIF orientation swaps the axes
    return Decoded(pixels, reduction, (height, width) if turned else (width, height))


def read_file_bytes(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """A local image file's bytes, its extension checked to name an accepted format and its size to fit."""
    if EXTENSIONS.get(path.suffix.lower()) is None:
        raise UnsupportedFormat(f"{path.name}: extension {path.suffix or '(none)'} is not .jpg, .jpeg, .png or .webp")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageTooLarge(f"{path.name} is {size} bytes; the limit is {max_bytes}")
        return path.read_bytes()
    except OSError as exc:
        raise CorruptImage(f"{path.name}: cannot read: {exc.strerror or exc}") from None


def read_image_file(
    path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[RGBImage, bytes]:
    """Read a local image file; the extension must name an accepted format that matches its content.

    Returns the pixels and the raw bytes (callers hash the bytes, never keep them).
    """
    data = read_file_bytes(path, max_bytes=max_bytes)
    return decode_file_bytes(path, data, max_bytes=max_bytes, max_pixels=max_pixels), data


def decode_file_bytes(
    path: Path, data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
) -> RGBImage:
    """:func:`read_image_file` after the read: the bytes of file ``path`` (read elsewhere, e.g. by a
    cluster's driver) checked against its extension and decoded, with the same errors."""
    return decode_file_reduced(path, data, max_bytes=max_bytes, max_pixels=max_pixels).pixels


def decode_file_reduced(
    path: Path, data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS,
    min_long_side: int | None = None,
) -> Decoded:
    """:func:`decode_file_bytes` by way of :func:`decode_reduced`: a large JPEG file may be decoded reduced,
    exactly as an upload is."""
    expected = EXTENSIONS.get(path.suffix.lower())
    if expected is None:
        raise UnsupportedFormat(f"{path.name}: extension {path.suffix or '(none)'} is not .jpg, .jpeg, .png or .webp")
    if len(data) > max_bytes:
        raise ImageTooLarge(f"{path.name} is {len(data)} bytes; the limit is {max_bytes}")
    try:
        decoded = decode_reduced(data, max_bytes=max_bytes, max_pixels=max_pixels, min_long_side=min_long_side)
    except (EmptyImage, UnsupportedFormat, CorruptImage, ImageTooLarge) as exc:
        raise type(exc)(f"{path.name}: {exc.message}") from None
    actual = _format_of(data)
    if actual != expected:
        raise UnsupportedFormat(f"{path.name}: the extension says {expected} but the content is {actual}")
    return decoded


def _format_of(data: bytes) -> str:
    if data.startswith(b"\xff\xd8"):
        return "JPEG"
    if data.startswith(b"\x89PNG"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return "unknown"
