"""Errors of the face engine. All are client errors: the input, not the server, is at fault."""

from __future__ import annotations

from faceward.errors import FacewardError


class VisionError(FacewardError):
    code = "vision_error"
    status = 422


class ImageError(VisionError):
    """The bytes are not an image we open: wrong format, corrupt, or hostile."""

    code = "bad_image"


class EmptyImage(ImageError):
    code = "empty_image"


class UnsupportedFormat(ImageError):
    code = "unsupported_format"
    status = 415


class CorruptImage(ImageError):
    code = "corrupt_image"


class ImageTooLarge(ImageError):
    """Over the byte cap or the pixel cap (a decompression bomb is the latter)."""

    code = "image_too_large"
    status = 413


class NoFaceFound(VisionError):
    code = "no_face"


class LowQualityFace(VisionError):
    """Enrollment refused a face; ``reasons`` lists every limit it failed."""

    code = "low_quality"

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("face refused: " + "; ".join(reasons))
        self.reasons = reasons


class AmbiguousSubject(LowQualityFace):
    """An enrollment photo shows several faces and none is clearly the subject."""

    code = "ambiguous_subject"

    def __init__(self, message: str) -> None:
        super().__init__([message])


class ModelIntegrityError(VisionError):
    """A model file is missing or its SHA-256 differs from the manifest: refuse to run it."""

    code = "model_integrity"
    status = 500


class ManifestError(VisionError):
    """A recognizer manifest is unreadable or incomplete: the configured model cannot be used."""

    code = "model_manifest"
    status = 500
