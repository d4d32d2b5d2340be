"""The face engine: the verbs everything else calls (find faces, embed them).

Models load once, on first use, never at import. The engine is not thread-safe
(dlib objects are not); give each worker its own.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from faceward.settings import Detector, Engine, Settings
from faceward.vision.align import LandmarkPredictor, face_chip
from faceward.vision.decode import RGBImage
from faceward.vision.detect import Detection, FaceDetector, HogDetector, MmodDetector
from faceward.vision.embed import DescriptorRuntime, DlibDescriptor, Embedder, Vectors
from faceward.vision.quality import QualityLimits, measure
from faceward.vision.types import Box, Face


@dataclass(frozen=True, slots=True)
class EngineOptions:
    engine: Engine = Engine.DLIB
    detector: Detector = Detector.HOG
    upsample: int = 1
    detector_fallback: bool = True
    flip_average: bool = True
    cache_dir: str | None = None
    threads: int | None = None  # descriptor runtime threads; None = every core

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineOptions:
        return cls(
            engine=settings.engine, detector=settings.detector, upsample=settings.upsample,
            detector_fallback=settings.detector_fallback, flip_average=settings.flip_average,
            cache_dir=str(settings.cache_dir),
        )


def central_box(image: RGBImage, fraction: float = 0.44) -> Box:
    """A centred square for pre-cropped photos where no detector fires (LFW's protocol scores every pair)."""
    height, width = image.shape[:2]
    side = int(min(height, width) * fraction)
    left, top = (width - side) // 2, (height - side) // 2
    return Box(left, top, left + side, top + side)


class FaceEngine:
    def __init__(self, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()

    @cached_property
    def _hog(self) -> HogDetector:
        return HogDetector()

    @cached_property
    def _mmod(self) -> MmodDetector:
        return MmodDetector()

    @cached_property
    def _landmarks(self) -> LandmarkPredictor:
        return LandmarkPredictor()

    @cached_property
    def embedder(self) -> Embedder:
        return Embedder(self._runtime(), flip_average=self.options.flip_average)

    def _runtime(self) -> DescriptorRuntime:
        if self.options.engine is Engine.ONNX:
            from faceward.vision.onnx import OnnxDescriptor, converted_model_path

            cache = Path(self.options.cache_dir) if self.options.cache_dir else Path(tempfile.gettempdir()) / "faceward"
            return OnnxDescriptor(converted_model_path("descriptor", cache / "models"), threads=self.options.threads)
        return DlibDescriptor()

    @property
    def providers(self) -> list[str]:
        runtime = self.embedder.runtime
        return list(getattr(runtime, "providers", ["dlib-cpu"]))

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    def _primary(self) -> FaceDetector:
        return self._mmod if self.options.detector is Detector.MMOD else self._hog

    def detect(self, image: RGBImage) -> list[Detection]:
        """Every face found, largest first; falls back to MMOD when HOG finds none (if enabled)."""
        found = self._primary().detect(image, self.options.upsample)
        if not found and self.options.detector_fallback and self.options.detector is Detector.HOG:
            found = self._mmod.detect(image, self.options.upsample)
        return sorted(found, key=lambda d: d.box.area, reverse=True)

    def faces(self, image: RGBImage, *, assume_centre: bool = False) -> list[Face]:
        """Detect, landmark, align and measure every face (no descriptors yet).

        With ``assume_centre``, an image with no detection yields one face from its central region.
        """
        detections = self.detect(image)
        if not detections and assume_centre:
            detections = [Detection(central_box(image), -1.0, "centre")]
        faces = []
        for det in detections:
            points = self._landmarks.predict(image, det.box)
            chip = face_chip(image, det.box, points)
            quality = measure(det.box.width, chip, points, det.score)
            faces.append(Face(det.box, det.score, det.detector, points, chip, quality))
        return faces

    def embed(self, faces: list[Face]) -> Vectors:
        """Descriptors for ``faces`` in one batch; also stored on each face."""
        if not faces:
            return np.zeros((0, 128), dtype=np.float32)
        vectors = self.embedder.embed(np.stack([f.chip for f in faces]))
        for face, vector in zip(faces, vectors):
            face.descriptor = vector
        return vectors

    def analyze(self, image: RGBImage, *, assume_centre: bool = False) -> list[Face]:
        faces = self.faces(image, assume_centre=assume_centre)
        self.embed(faces)
        return faces


__all__ = ["EngineOptions", "FaceEngine", "QualityLimits", "central_box"]
