"""Face analysis for the use cases: in process (a lazily built engine) or in worker processes (the server).

Either way the faces come back with the same descriptors and quality, and the
same model id and scoring follow from the engine's configuration.
"""

from __future__ import annotations

import hashlib
import threading

from faceward.errors import ConfigError
from faceward.scoring import Scoring, Uncalibrated, lookup
from faceward.settings import Settings
from faceward.vision import FaceEngine, NoFaceFound, QualityLimits
from faceward.vision.fusion import templates_sha256
from faceward.vision.models import MANIFEST, ModelName
from faceward.vision.remote import RemoteEngine
from faceward.vision.subject import Embed, EmbedChoice, subject_face
from faceward.vision.types import Face


class Analysis:
    """Decode, detect and embed an upload; the engine's model id, template size and scoring."""

    def __init__(self, settings: Settings, engine: FaceEngine | None = None) -> None:
        self.settings = settings
        self._engine = engine
        self._lock = threading.Lock()
        self.remote: RemoteEngine | None = None  # the server analyses in worker processes (see vision.remote)
        self.limits = QualityLimits(
            settings.min_face_px, settings.min_sharpness, settings.min_detector_score, settings.min_frontalness
        )

    @property
    def engine(self) -> FaceEngine:
        if self._engine is None:
            from faceward.vision import EngineOptions

            self._engine = FaceEngine(EngineOptions.from_settings(self.settings))
        return self._engine

    @property
    def loaded_engine(self) -> FaceEngine | None:
        """The in-process engine if one was made (never creates it: the metrics and readiness peek)."""
        return self._engine

    @property
    def model_id(self) -> str:
        """The id the engine's templates record: the recognizer's id, with ``/flip`` when mirror-averaged."""
        return self.engine.template_id

    @property
    def model_sha256(self) -> str:
        """The full SHA-256 of the recognizer's weights, recorded with every template it makes (for a fused
        model, of both files' hashes and the weight: :func:`faceward.vision.fusion.templates_sha256`)."""
        manifest = self.engine.manifest
        return templates_sha256(manifest) if manifest is not None else MANIFEST[ModelName.DESCRIPTOR].sha256

    @property
    def embedding_size(self) -> int:
        """The size of the engine's templates (dlib's 128 unless a recognizer manifest says otherwise)."""
        return self.engine.embedding_size

    @property
    def scoring(self) -> Scoring:
        """The engine's calibration table (shipped, or measured beside its manifest); else its manifest's threshold."""
        try:
            return lookup(self.model_id, self.engine.manifest)
        except ConfigError:
            manifest = self.engine.manifest
            if manifest is None:
                raise
            return Uncalibrated(self.model_id, manifest.threshold)

    def faces(self, image: bytes, tenant_id: str = "", *, embed: EmbedChoice = Embed.ALL) -> tuple[list[Face], str]:
        """Every face in ``image``, largest first, with descriptors on those ``embed`` picks; the image's SHA-256.

        ``tenant_id`` is whose turn it is on the shared analysis workers (their fair scheduler)."""
        faces, _, digest = self.read(image, tenant_id, embed=embed)
        return faces, digest

    def detect(self, image: bytes, tenant_id: str = "") -> tuple[list[Face], tuple[int, int], str]:
        """The faces without descriptors, largest first; the upright image's ``(width, height)``; its SHA-256."""
        return self.read(image, tenant_id, embed=Embed.NONE)

    def read(
        self, image: bytes, tenant_id: str = "", *, embed: EmbedChoice = Embed.ALL,
    ) -> tuple[list[Face], tuple[int, int], str]:
        """The faces, largest first, with descriptors on those ``embed`` picks (the act's face only: no
        bystander's template is made, decision 038); the upright image's ``(width, height)`` (the frame
        of the boxes); its SHA-256."""
        digest = hashlib.sha256(image).hexdigest()
        if self.remote is not None:
            faces, size = self.remote.analyze(image, embed=embed, tenant=tenant_id)
            return faces, size, digest
        with self._lock:
            faces, size = self.engine.read(
                image, max_bytes=self.settings.max_image_bytes, max_pixels=self.settings.max_image_pixels, embed=embed
            )
        return faces, size, digest

    def subject(self, image: bytes, what: str, tenant_id: str = "") -> tuple[Face, int, str]:
        """The subject of ``image``, its most prominent face, embedded alone (:func:`subject_face`;
        :class:`NoFaceFound` when none); how many faces it shows; its SHA-256."""
        faces, size, digest = self.read(image, tenant_id, embed=Embed.SUBJECT)
        if not faces:
            raise NoFaceFound(f"no face was found in the {what}")
        return faces[subject_face([f.box for f in faces], size)], len(faces), digest


__all__ = ["Analysis"]
