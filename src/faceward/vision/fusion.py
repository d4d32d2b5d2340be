"""Score-level fusion: the bundled dlib ResNet and a model of one's own, one template per face.

A manifest with ``"fusion": {"with": "dlib-resnet-v1", "weight": w}`` makes the engine
compute both models' descriptors of every face and keep, as its template, their
weighted concatenation ``[sqrt(w) d, sqrt(1 - w) m]`` of the two unit-length
descriptors. The cosine of two such templates is ``w cos(d, d') + (1 - w) cos(m, m')``:
the fused score is an ordinary dot product, so the index, the store, calibration
and the API need nothing new (decision 032).

Each face's two chips travel as one array so that batches, worker processes and
the evaluation cache carry them unchanged: dlib's 150 x 150 chip on top, the own
model's chip below, each centred on a common width. Mirroring that stack mirrors
each chip in place, which is exactly what flip-averaging asks of it.
"""

from __future__ import annotations

import hashlib

import numpy as np
from numpy.typing import NDArray

from faceward.vision.align import CHIP_SIZE, face_chip
from faceward.vision.decode import RGBImage
from faceward.vision.embed import DescriptorRuntime, Vectors, normalise
from faceward.vision.models import MANIFEST, ModelName
from faceward.vision.manifest import RecognizerManifest
from faceward.vision.recognizer import OnnxRecognizer, TemplateAligner
from faceward.vision.types import Box

BUNDLED_PARTNER = "dlib-resnet-v1"
DLIB_SIZE = 128


def templates_sha256(manifest: RecognizerManifest) -> str:
    """What each template of ``manifest``'s model records as the weights it came from: the model file's
    SHA-256; when fused, ``sha256("<own SHA-256>+<dlib ResNet's SHA-256>@<weight>")``, since a fused
    template changes with either file or the weight, and one file's hash alone would name only half of it."""
    if manifest.fusion_weight is None:
        return manifest.sha256
    partner = MANIFEST[ModelName.DESCRIPTOR].sha256
    return hashlib.sha256(f"{manifest.sha256}+{partner}@{manifest.fusion_weight:g}".encode()).hexdigest()


def stack_width(manifest: RecognizerManifest) -> int:
    """The common width of the two chips (both centred on it, with as much padding left as right)."""
    return max(CHIP_SIZE, manifest.input_size[0])


def _left(width: int, inner: int) -> int:
    """Columns left of a chip ``inner`` wide, centred on ``width``."""
    return (width - inner) // 2


def _centred(chip: NDArray[np.uint8], width: int) -> NDArray[np.uint8]:
    pad = _left(width, chip.shape[1])
    return np.pad(chip, ((0, 0), (pad, width - chip.shape[1] - pad), (0, 0)))


class FusedAligner:
    """Cuts both chips of a face: dlib's (from dlib's points) over the own model's (from its template)."""

    def __init__(self, manifest: RecognizerManifest) -> None:
        self._own = TemplateAligner(manifest)
        self._width = stack_width(manifest)

    def chip(
        self, image: RGBImage, box: Box, landmarks: NDArray[np.float32], keypoints: NDArray[np.float32] | None = None
    ) -> NDArray[np.uint8]:
        top = face_chip(image, box, landmarks)
        bottom = self._own.chip(image, box, landmarks, keypoints)
        return np.ascontiguousarray(np.concatenate([_centred(top, self._width), _centred(bottom, self._width)]))

    def face_view(self, chip: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """dlib's chip out of the stack: what quality is measured on and a reviewer's thumbnail shows."""
        pad = _left(self._width, CHIP_SIZE)
        return chip[:CHIP_SIZE, pad : pad + CHIP_SIZE]


class FusedRecognizer:
    """Both models on their chips of the stack; raw descriptors ``[sqrt(w) d/|d|, sqrt(1 - w) m/|m|]``."""

    def __init__(self, manifest: RecognizerManifest, bundled: DescriptorRuntime, own: OnnxRecognizer) -> None:
        assert manifest.fusion_weight is not None
        self.manifest, self._bundled, self._own = manifest, bundled, own
        self._weights = np.sqrt([manifest.fusion_weight, 1.0 - manifest.fusion_weight]).astype(np.float32)
        self._width = stack_width(manifest)
        self.dim = DLIB_SIZE + manifest.embedding_size

    @property
    def providers(self) -> list[str]:
        return list(dict.fromkeys([*getattr(self._bundled, "providers", ["dlib-cpu"]), *self._own.providers]))

    def compute(self, chips: NDArray[np.uint8]) -> Vectors:
        if len(chips) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        width, height = self.manifest.input_size
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE + height, self._width, 3):
            raise ValueError(f"expected stacked chips [N,{CHIP_SIZE + height},{self._width},3], got {chips.shape}")
        left, own_left = _left(self._width, CHIP_SIZE), _left(self._width, width)
        top = np.ascontiguousarray(chips[:, :CHIP_SIZE, left : left + CHIP_SIZE])
        bottom = np.ascontiguousarray(chips[:, CHIP_SIZE:, own_left : own_left + width])
        parts = (normalise(self._bundled.compute(top)), normalise(self._own.compute(bottom)))
        return np.concatenate([w * p for w, p in zip(self._weights, parts)], axis=1).astype(np.float32)


__all__ = ["BUNDLED_PARTNER", "FusedAligner", "FusedRecognizer", "stack_width"]
