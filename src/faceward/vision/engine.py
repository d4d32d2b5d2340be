"""The face engine: the verbs everything else calls (find faces, embed them).

Models load once, on first use, never at import. The engine is not thread-safe
(dlib objects are not); give each worker its own.

What runs where:

- detection: YuNet-n on ONNX Runtime (the default, on a working copy of the
  image, its box mapped to a HOG-like box, see ``docs/decisions/012-detector.md``);
  or dlib's HOG; dlib's MMOD CNN (``detector=mmod``, and the fallback
  when HOG finds nothing) runs converted on ONNX Runtime when ``engine=onnx``
  (same boxes as dlib's, see ``docs/decisions/004-onnx-engine.md``), in dlib
  otherwise;
- landmarks: dlib's 5-point shape predictor inside the (HOG-like) box; YuNet's
  own 5 points are kept on :attr:`Face.keypoints`;
- recognizer: dlib's ResNet (on ONNX Runtime or in dlib, per ``engine``) on
  dlib's 150x150 chip, or, when a manifest is configured, that model on its own
  template-aligned chip (:mod:`faceward.vision.recognizer`), cut from the
  detector's own 5 points (YuNet's) by a similarity transform, or from dlib's
  points when the detector gives none (HOG, MMOD).
  A manifest may fuse its model with dlib's ResNet (:mod:`faceward.vision.fusion`):
  both run, on their own chips, and one template holds both descriptors.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from faceward.settings import Detector, Engine, Settings
from faceward.vision.align import LandmarkPredictor, face_chip
from faceward.vision.decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, RGBImage, decode_reduced
from faceward.vision.detect import (
    Detection,
    FaceDetector,
    HogDetector,
    MmodDetector,
    OnnxMmodFaceDetector,
    YuNetDetector,
)
from faceward.vision.embed import DescriptorRuntime, DlibDescriptor, Embedder, Vectors
from faceward.vision.fusion import FusedAligner, FusedRecognizer
from faceward.vision.models import DLIB_DESCRIPTOR_ID
from faceward.vision.orientation import box_back, clockwise_degrees, points_back, turned
from faceward.vision.quality import QualityLimits, measure
from faceward.vision.manifest import BUNDLED_PROVENANCE, RecognizerManifest, load_manifest
from faceward.vision.recognizer import OnnxRecognizer, TemplateAligner
from faceward.vision.scale import ANALYSIS_SIDE, working_copy
from faceward.vision.subject import Embed, EmbedChoice, to_embed
from faceward.vision.types import Box, Face

DLIB_EMBEDDING_SIZE = 128
FLIP_SUFFIX = "/flip"
SMALLEST_FACE_PX = 40.0  # YuNet's tiled pass looks for faces down to this width in the original


@dataclass(frozen=True, slots=True)
class EngineOptions:
    engine: Engine = Engine.DLIB
    detector: Detector = Detector.YUNET
    upsample: int = 1
    detector_fallback: bool = True
    flip_average: bool = True
    cache_dir: str | None = None
    threads: int | None = None  # ONNX Runtime threads per session; None = every core
    recognizer: str | None = None  # path of a recognizer manifest; None = dlib's ResNet
    # The per-image analysis budget: at most this many faces (the largest) get landmarks, chips and
    # descriptors, so a crowd photo costs a bounded multiple of a portrait.
    max_faces: int = 20

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineOptions:
        return cls(
            engine=settings.engine, detector=settings.detector, upsample=settings.upsample,
            detector_fallback=settings.detector_fallback, flip_average=settings.flip_average,
            cache_dir=str(settings.cache_dir),
            recognizer=str(settings.recognizer_manifest) if settings.recognizer_manifest else None,
        )


class ChipAligner(Protocol):
    """Cuts, from an image and a face's 5 landmarks, the chip the recognizer was trained on."""

    def chip(
        self, image: RGBImage, box: Box, landmarks: NDArray[np.float32], keypoints: NDArray[np.float32] | None = None
    ) -> NDArray[np.uint8]:
        """``landmarks``: dlib's 5 points; ``keypoints``: the detector's own 5 (template order), when it gives them."""
        ...

    def face_view(self, chip: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """The face as a person sees it in ``chip`` (quality is measured on it; thumbnails show it)."""
        ...


class DlibChipAligner:
    """dlib's 150x150 chip (``get_face_chip``, padding 0.25), for dlib's ResNet."""

    def chip(
        self, image: RGBImage, box: Box, landmarks: NDArray[np.float32], keypoints: NDArray[np.float32] | None = None
    ) -> NDArray[np.uint8]:
        return face_chip(image, box, landmarks)  # dlib's ResNet was trained on dlib's own points

    def face_view(self, chip: NDArray[np.uint8]) -> NDArray[np.uint8]:
        return chip


def central_box(image: RGBImage, fraction: float = 0.44) -> Box:
    """A centred square for pre-cropped photos where no detector fires (LFW's protocol scores every pair)."""
    height, width = image.shape[:2]
    side = int(min(height, width) * fraction)
    left, top = (width - side) // 2, (height - side) // 2
    return Box(left, top, left + side, top + side)


M = TypeVar("M")


def _clipped(box: Box, height: int, width: int) -> Box:
    return Box(max(0, box.left), max(0, box.top), min(width, box.right), min(height, box.bottom))


class FaceEngine:
    def __init__(self, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()
        self.load_seconds: float | None = None  # models read, SHA-256 checked and sessions built, summed

    def _timed(self, build: Callable[[], M]) -> M:
        started = time.perf_counter()
        model = build()
        self.load_seconds = (self.load_seconds or 0.0) + time.perf_counter() - started
        return model

    @property
    def _cache(self) -> Path:
        base = Path(self.options.cache_dir) if self.options.cache_dir else Path(tempfile.gettempdir()) / "faceward"
        return base / "models"

    @cached_property
    def _hog(self) -> HogDetector:
        return self._timed(HogDetector)

    @cached_property
    def _yunet(self) -> YuNetDetector:
        return self._timed(lambda: YuNetDetector(threads=self.options.threads))

    @cached_property
    def _mmod(self) -> FaceDetector:
        if self.options.engine is Engine.ONNX:
            return self._timed(lambda: OnnxMmodFaceDetector(self._cache, threads=self.options.threads))
        return self._timed(MmodDetector)

    @cached_property
    def _landmarks(self) -> LandmarkPredictor:
        return self._timed(LandmarkPredictor)

    @cached_property
    def manifest(self) -> RecognizerManifest | None:
        """The configured recognizer's manifest (validated; its file is hashed when the model loads)."""
        return load_manifest(Path(self.options.recognizer)) if self.options.recognizer else None

    @cached_property
    def aligner(self) -> ChipAligner:
        if self.manifest is None:
            return DlibChipAligner()
        return FusedAligner(self.manifest) if self.manifest.fusion_weight is not None else TemplateAligner(self.manifest)

    @cached_property
    def embedder(self) -> Embedder:
        return self._timed(lambda: Embedder(self._runtime(), flip_average=self.flip_average, model_id=self.model_id))

    @property
    def flip_average(self) -> bool:
        """Whether descriptors average the chip and its mirror: the manifest's say, else the settings'."""
        if self.manifest is not None and self.manifest.flip_average is not None:
            return self.manifest.flip_average
        return self.options.flip_average

    def _runtime(self) -> DescriptorRuntime:
        if self.manifest is not None:
            own = OnnxRecognizer(self.manifest, threads=self.options.threads)
            if self.manifest.fusion_weight is None:
                return own
            return FusedRecognizer(self.manifest, self._bundled_runtime(), own)
        return self._bundled_runtime()

    def _bundled_runtime(self) -> DescriptorRuntime:
        if self.options.engine is Engine.ONNX:
            from faceward.vision.onnx import OnnxDescriptor, converted_model_path

            return OnnxDescriptor(converted_model_path("descriptor", self._cache), threads=self.options.threads)
        return DlibDescriptor()

    @property
    def model_id(self) -> str:
        """The recognizer's id (known without loading it): ``dlib-resnet-v1`` or the manifest's ``name-version-sha``."""
        return self.manifest.model_id if self.manifest else DLIB_DESCRIPTOR_ID

    @property
    def template_id(self) -> str:
        """The id every template records: the model id, with ``/flip`` when descriptors are mirror-averaged."""
        return self.model_id + FLIP_SUFFIX if self.flip_average else self.model_id

    @property
    def provenance(self) -> dict[str, Any]:
        """The recognizer's licence, training-data statement and intended use, as its manifest records them."""
        return self.manifest.provenance() if self.manifest else dict(BUNDLED_PROVENANCE)

    @property
    def embedding_size(self) -> int:
        return self.manifest.template_size if self.manifest else DLIB_EMBEDDING_SIZE

    @property
    def providers(self) -> list[str]:
        """Execution providers the recognizer's session actually uses (``dlib-cpu`` for dlib's own runtime)."""
        runtime = self.embedder.runtime
        return list(getattr(runtime, "providers", ["dlib-cpu"]))

    def describe(self, *, load_detector: bool = True) -> dict[str, Any]:
        """What this engine runs: ids, runtimes and the providers each session actually uses (loads the models)."""
        detectors: dict[str, Any] = {"primary": self.options.detector.value, "upsample": self.options.upsample,
                                     "fallback": self.options.detector_fallback and self.options.detector is Detector.HOG}
        uses_mmod = self.options.detector is Detector.MMOD or detectors["fallback"]
        if self.options.detector is Detector.YUNET:
            detectors["upsample"] = 0  # the working copy sets the smallest face, not upsampling
            if load_detector:
                detectors["yunet_providers"] = self._yunet.providers
        if uses_mmod and load_detector:
            detectors["mmod_runtime"] = "onnx" if self.options.engine is Engine.ONNX else "dlib"
            detectors["mmod_providers"] = list(getattr(self._mmod, "providers", ["dlib-cpu"]))
        return {
            "engine": self.options.engine.value,
            "model_id": self.model_id,
            "template_id": self.template_id,
            "embedding_size": self.embedding_size,
            "recognizer": "manifest" if self.manifest else f"dlib-resnet ({self.options.engine.value})",
            "recognizer_manifest": self.options.recognizer,
            "recognizer_providers": self.providers,
            "flip_average": self.flip_average,
            "provenance": self.provenance,
            "detector": detectors,
        }

    def load(self) -> None:
        """Load every model this engine may run now instead of on first use (workers call this before timing)."""
        self._primary()
        self._yunet  # the turn check runs YuNet whatever the primary (decision 035)
        self._landmarks
        self.embedder
        if self.options.detector_fallback and self.options.detector is Detector.HOG:
            self._mmod

    def _primary(self) -> FaceDetector:
        if self.options.detector is Detector.YUNET:
            return self._yunet
        return self._mmod if self.options.detector is Detector.MMOD else self._hog

    def detect(
        self, image: RGBImage, *, reduction: float = 1.0, copy: tuple[RGBImage, float] | None = None
    ) -> list[Detection]:
        """Every face found, largest first; falls back to MMOD when HOG finds none (if enabled).

        YuNet sizes its own working copies; HOG, its upsampling and the MMOD
        fallback run on the 640-px working copy only, so none of them costs
        more on a 40 MP upload than on a 1 MP one. Faces down to :data:`SMALLEST_FACE_PX`
        original pixels are looked for (``reduction``: see :meth:`faces`; ``copy``: the working copy, if made).
        """
        if self.options.detector is Detector.YUNET:
            found = self._yunet.detect(image, 0, smallest=SMALLEST_FACE_PX / reduction, copy=copy)
        else:
            small, factor = copy or working_copy(image)
            found = self._primary().detect(small, self.options.upsample)
            if not found and self.options.detector_fallback and self.options.detector is Detector.HOG:
                found = self._mmod.detect(small, self.options.upsample)
            if factor != 1.0:
                height, width = image.shape[:2]
                found = [replace(d, box=_clipped(d.box.scaled(factor), height, width)) for d in found]
        return sorted(found, key=lambda d: d.box.area, reverse=True)

    def faces(self, image: RGBImage, *, assume_centre: bool = False, reduction: float = 1.0) -> list[Face]:
        """Detect, landmark, align and measure the largest ``max_faces`` faces (no descriptors yet).

        With ``assume_centre``, an image with no detection yields one face from its central region.
        ``reduction`` says how many original pixels one pixel of ``image`` spans (a reduced decode,
        :func:`faceward.vision.decode.decode_reduced`): boxes, landmarks and ``face_px`` are then
        given in the original's pixels. A photo not upright (no EXIF orientation) is analysed turned upright; its faces'
        boxes and points stay on the photo as sent and their ``rotation_cw`` says the turn (decision 035).
        """
        height, width = image.shape[:2]
        # The working copy, made once for the upright pass and the turn check (a 4 MP blank: ~12 ms)
        copy = self._yunet.working_copy(image) if self.options.detector is Detector.YUNET else working_copy(image)
        found = self.detect(image, reduction=reduction, copy=copy)
        quarters, image, detections = self._upright(image, found, reduction, copy)
        detections = detections[: self.options.max_faces]
        if not detections and assume_centre:
            detections = [Detection(central_box(image), -1.0, "centre")]
        faces = []
        aligner = self.aligner
        for det in detections:
            points = self._landmarks.predict(image, det.box)
            chip = aligner.chip(image, det.box, points, det.landmarks)
            box = box_back(det.box, quarters, height, width).scaled(reduction)
            view = aligner.face_view(chip)
            face_px = box.height if quarters % 2 else box.width  # the face's own width
            quality = measure(face_px, view, points, det.score, det.landmarks)
            keypoints = det.landmarks
            if keypoints is not None:
                keypoints = points_back(keypoints, quarters, height, width) * np.float32(reduction)
            faces.append(Face(box, det.score, det.detector, points_back(points, quarters, height, width) * np.float32(reduction),
                              chip, quality, keypoints=keypoints, view=None if view is chip else view,
                              rotation_cw=clockwise_degrees(quarters)))
        return faces

    def _upright(
        self, image: RGBImage, found: list[Detection], reduction: float, copy: tuple[RGBImage, float] | None
    ) -> tuple[int, RGBImage, list[Detection]]:
        """Quarter turns that make a photo upright (0 if it is already), the photo so turned, and its faces
        (detected again on the turned photo, small faces of a group included).

        YuNet judges whatever the primary detector. HOG finds some faces upside down (31 of 221 lfw-dev
        photos so turned), MMOD finds faces on their side as confidently as upright, and neither's score is
        YuNet's: so with either, YuNet runs once on the working copy as sent (4 ms for a 250-px portrait,
        17 ms for a 640-px copy, against HOG's or MMOD's own run there) and checks as a YuNet engine does.
        """
        if self.options.detector is Detector.YUNET:
            quarters = self._yunet.upright_turn(image, found, copy=copy)
        else:
            small, _ = copy or working_copy(image)
            quarters = self._yunet.upright_turn(small, self._yunet.detect(small), copy=(small, 1.0))
        if not quarters:
            return 0, image, found
        upright = turned(image, quarters)
        return quarters, upright, self.detect(upright, reduction=reduction)

    def embed(self, faces: list[Face]) -> Vectors:
        """Descriptors for ``faces`` in one batch; also stored on each face."""
        if not faces:
            return np.zeros((0, self.embedding_size), dtype=np.float32)
        vectors = self.embedder.embed(np.stack([f.chip for f in faces]))
        for face, vector in zip(faces, vectors):
            face.descriptor = vector
        return vectors

    def read(
        self, data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS,
        embed: EmbedChoice = Embed.ALL,
    ) -> tuple[list[Face], tuple[int, int]]:
        """Decode an upload (reduced by DCT scaling where it is far larger than analysis needs) and analyse it.

        Returns the faces (boxes in the upload's upright pixels; descriptors on those ``embed`` picks,
        :func:`~faceward.vision.subject.to_embed`) and the upright upload's ``(width, height)``.
        Raises the decoder's errors.
        """
        decoded = decode_reduced(data, max_bytes=max_bytes, max_pixels=max_pixels, min_long_side=ANALYSIS_SIDE)
        return self.analyze(decoded.pixels, reduction=decoded.reduction, size=decoded.size, embed=embed), decoded.size

    def analyze(
        self, image: RGBImage, *, assume_centre: bool = False, reduction: float = 1.0,
        size: tuple[int, int] | None = None, embed: EmbedChoice = Embed.ALL,
    ) -> list[Face]:
        """:meth:`faces`, with descriptors on the faces ``embed`` picks; ``size`` is the upright photo's
        ``(width, height)`` in the boxes' pixels (default: ``image``'s, times ``reduction``)."""
        faces = self.faces(image, assume_centre=assume_centre, reduction=reduction)
        if size is None:
            size = (round(image.shape[1] * reduction), round(image.shape[0] * reduction))
        self.embed([faces[i] for i in to_embed([f.box for f in faces], size, embed)])
        return faces

__all__ = ["ChipAligner", "DlibChipAligner", "EngineOptions", "FaceEngine", "QualityLimits", "central_box"]
