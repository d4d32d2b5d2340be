"""The face engine: safe intake, detection, alignment, descriptors and quality."""

from faceward.vision.decode import decode_image, read_image_file
from faceward.vision.engine import EngineOptions, FaceEngine
from faceward.vision.errors import (
    AmbiguousSubject,
    CorruptImage,
    EmptyImage,
    ImageError,
    ImageTooLarge,
    LowQualityFace,
    NoFaceFound,
    UnsupportedFormat,
    VisionError,
)
from faceward.vision.quality import PROBE_LIMITS, QualityLimits, advisories, refusals
from faceward.vision.subject import Embed, dominant_face, subject_face
from faceward.vision.types import Box, Face, Quality

__all__ = [
    "AmbiguousSubject", "Box", "CorruptImage", "Embed", "EmptyImage", "EngineOptions", "Face", "FaceEngine", "ImageError",
    "ImageTooLarge", "LowQualityFace", "NoFaceFound", "PROBE_LIMITS", "Quality", "QualityLimits", "UnsupportedFormat",
    "VisionError", "advisories", "decode_image", "dominant_face", "read_image_file", "refusals",
    "subject_face",
]
