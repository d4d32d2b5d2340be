"""Uploaded images: bytes from a multipart field, checked against what the client declared.

Only uploaded bytes are accepted: the API has no URL field, so the server never
fetches anything on a client's behalf. The declared content type and file name
extension, when given, must name JPEG, PNG or WebP and agree with the bytes'
own signature; decoding (pixel caps, corrupt data) is :func:`faceward.vision.decode_image`'s job.
"""

from __future__ import annotations

from collections import Counter
from pathlib import PurePosixPath

from fastapi import Request, UploadFile

from faceward.errors import InvalidInput
from faceward.vision.decode import phone_format_hint
from faceward.vision.errors import EmptyImage, ImageTooLarge, UnsupportedFormat

CONTENT_TYPES = {"image/jpeg": "JPEG", "image/jpg": "JPEG", "image/pjpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
NEUTRAL_TYPES = {"", "application/octet-stream"}
EXTENSIONS = {".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".png": "PNG", ".webp": "WEBP"}


def signature(data: bytes) -> str | None:
    """JPEG, PNG or WEBP from the first bytes; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


async def one_part_each(request: Request) -> None:
    """A multipart form must not name a field twice: 50 ``image`` parts of which the last silently
    counts are ambiguous input, refused with 422 before anything is analysed."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return
    form = await request.form()  # parsed once; the route's parameters read the same form
    counts = Counter(name for name, _ in form.multi_items())
    repeated = sorted(name for name, n in counts.items() if n > 1)
    if repeated:
        name = repeated[0][:40]
        raise InvalidInput(f"{name}: send one part named {name!r}, not {counts[repeated[0]]}", code="invalid_request")


def read_image(upload: UploadFile, *, field: str, max_bytes: int) -> bytes:
    """The upload's bytes, at most ``max_bytes`` (read no further), or a 413/415/422 error."""
    data = upload.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageTooLarge(f"{field}: the image is larger than {max_bytes} bytes")
    if not data:
        raise EmptyImage(f"{field}: the image is empty (0 bytes)")
    actual = signature(data)
    declared = (upload.content_type or "").split(";", 1)[0].strip().lower()
    if declared not in NEUTRAL_TYPES:
        expected = CONTENT_TYPES.get(declared)
        if expected is None:
            raise UnsupportedFormat(
                f"{field}: content type {declared[:60]!r} is not accepted; send image/jpeg, image/png or image/webp"
                f"{phone_format_hint(declared.removeprefix('image/'))}"
            )
        if actual is not None and actual != expected:
            raise UnsupportedFormat(f"{field}: declared {declared} but the bytes are {actual}")
    suffix = PurePosixPath((upload.filename or "").replace("\\", "/")).suffix.lower()
    if suffix:
        expected = EXTENSIONS.get(suffix)
        if expected is None:
            raise UnsupportedFormat(f"{field}: files named *{suffix[:20]} are not accepted; send .jpg, .png or .webp")
        if actual is not None and actual != expected:
            raise UnsupportedFormat(f"{field}: the name says {expected} but the bytes are {actual}")
    return data
