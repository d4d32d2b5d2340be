"""Bring your own recognizer: a manifest's ONNX face-embedding model on ONNX Runtime.

The manifest's format and its validation are in :mod:`faceward.vision.manifest`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from faceward.vision.align import keypoint_chip, template_chip
from faceward.vision.decode import RGBImage
from faceward.vision.errors import ManifestError
from faceward.vision.manifest import MAX_BATCH, ColourOrder, Layout, RecognizerManifest
from faceward.vision.types import Box


class TemplateAligner:
    """Cuts the chip a manifest's model expects: its input size, the face on its 5-point template.

    From the detector's own 5 points when it gives them (YuNet), by a similarity
    transform of all five onto the template; otherwise from dlib's eyes and nose
    base (an approximation, see :mod:`faceward.vision.align`).
    """

    def __init__(self, manifest: RecognizerManifest) -> None:
        self.size = manifest.input_size
        self._template = np.asarray(manifest.template, dtype=np.float64)

    def chip(
        self, image: RGBImage, box: Box, landmarks: NDArray[np.float32], keypoints: NDArray[np.float32] | None = None
    ) -> NDArray[np.uint8]:
        if keypoints is not None:
            return keypoint_chip(image, keypoints, self._template, self.size)
        return template_chip(image, landmarks, self._template, self.size)

    def face_view(self, chip: NDArray[np.uint8]) -> NDArray[np.uint8]:
        return chip


class OnnxRecognizer:
    """A manifest's model on ONNX Runtime: ``uint8 [N,H,W,3]`` RGB chips in, raw ``float32 [N,D]`` out.

    The file is hashed and compared with the manifest before the session is created.
    """

    def __init__(self, manifest: RecognizerManifest, *, threads: int | None = None, providers: list[str] | None = None) -> None:
        from faceward.vision.onnx.runtime import make_session

        self.manifest = manifest
        path = manifest.verify()
        try:
            self._session = make_session(path, threads=threads, providers=providers)
        except Exception as exc:  # onnxruntime raises its own classes for unparsable graphs
            raise ManifestError(f"{path}: ONNX Runtime cannot load the model: {exc}") from None
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1:
            raise ManifestError(f"{path}: expected a model with one input, it has {len(inputs)}")
        self._input = inputs[0].name
        self._output = outputs[0].name
        batch = inputs[0].shape[0] if inputs[0].shape else None
        self._fixed = isinstance(batch, int) and batch >= 1  # some exports fix the batch size (often to 1)
        self._batch = int(batch) if self._fixed else MAX_BATCH  # type: ignore[arg-type]
        self._mean = np.asarray(manifest.mean, dtype=np.float32)
        self._scale = (1.0 / np.asarray(manifest.std, dtype=np.float64)).astype(np.float32)
        self.dim = manifest.embedding_size

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def prepare(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """The model's input tensor: colour order, ``(x - mean) / std``, layout."""
        width, height = self.manifest.input_size
        chips = np.asarray(chips)
        if chips.dtype != np.uint8 or chips.ndim != 4 or chips.shape[1:] != (height, width, 3):
            raise ValueError(f"expected uint8 [N,{height},{width},3] chips, got {chips.dtype} {chips.shape}")
        if self.manifest.colour_order is ColourOrder.BGR:
            chips = chips[..., ::-1]
        tensor = (chips.astype(np.float32) - self._mean) * self._scale
        if self.manifest.layout is Layout.NCHW:
            tensor = tensor.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(tensor, dtype=np.float32)

    def compute(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        if len(chips) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        for start in range(0, len(chips), self._batch):
            part = self.prepare(chips[start : start + self._batch])
            if self._fixed and len(part) < self._batch:  # pad the last part to the fixed batch
                part = np.concatenate([part, np.zeros((self._batch - len(part), *part.shape[1:]), np.float32)])
            out = self._session.run([self._output], {self._input: part})[0][: min(self._batch, len(chips) - start)]
            out = np.asarray(out, dtype=np.float32).reshape(len(out), -1)
            if out.shape[1] != self.dim:
                raise ManifestError(
                    f"{self.manifest.path}: the model gives {out.shape[1]}-d embeddings, the manifest says {self.dim}"
                )
            parts.append(out)
        return np.concatenate(parts)


__all__ = ["OnnxRecognizer", "TemplateAligner"]

