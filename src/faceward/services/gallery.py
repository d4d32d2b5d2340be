"""Gallery use cases: tenants' subjects, consent-gated enrollment, search and verify.

The service owns transactions and sealing: the store only ever sees sealed
bytes for names, consent references and templates. Results are leads for a
person to review, with a calibrated false-match estimate, never identifications.

Models: every template records the id of the model that made it, and a
tenant's settings record its gallery's model (``model_id``, and its
``embedding_size``) at the first enrollment. Search, verify and enrollment
refuse an engine that makes another model's templates (:class:`ModelMismatch`);
a gallery changes model only through a migration (:meth:`GalleryService.begin_migration`,
:meth:`~GalleryService.admit_migrated`, :meth:`~GalleryService.finish_migration`,
driven by ``faceward reenroll``), which builds the new templates beside the old
ones, where nothing searches them, and switches in one step.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import numpy as np

from faceward.errors import ConfigError, Conflict, FacewardError, InvalidInput, NotFound
from faceward.scoring import Calibration, Decision, fpir_threshold_fmr, lookup
from faceward.security.crypto import Keyring, aad, new_key, open_sealed, seal
from faceward.security.kms import TenantKeyWrapper
from faceward.security.templates import template_transform
from faceward.services.consent import Consent
from faceward.services.ledger import ErasureLedger
from faceward.services.search_index import SearchIndexes
from faceward.settings import IndexBackend, Settings
from faceward.store import FaceRecord, SqlStore, SubjectRecord, TenantRecord
from faceward.vision import FaceEngine, LowQualityFace, NoFaceFound, QualityLimits, refusals
from faceward.vision.embed import from_template, to_template
from faceward.vision.remote import RemoteEngine
from faceward.vision.types import Face, Quality

MIGRATION_KEY = "migrating_to"  # tenant setting while a gallery moves to another model
DLIB_EMBEDDING_SIZE = 128  # galleries enrolled before settings recorded a size hold dlib's templates
UNCALIBRATED_WARNING = (
    "uncalibrated model: no calibration table for {model} (`faceward models calibrate` measures one), so the "
    "decision uses the threshold in its manifest ({threshold}) and no false match rate can be estimated"
)
log = logging.getLogger(__name__)
LEAD_NOTICE = "Investigative lead only: a candidate must be reviewed by a trained person; it is not an identification."
MAX_K = 50


class ModelMismatch(FacewardError):
    code = "model_mismatch"
    status = 409


class TenantSuspended(FacewardError):
    code = "tenant_suspended"
    status = 403


@dataclass(frozen=True)
class Uncalibrated:
    """Scoring for a model with no calibration table: a fixed score threshold from its manifest, no FMR.

    Same ``threshold`` / ``estimated_fmr`` verbs as :class:`Calibration`, so the
    decision code is shared; ``estimated_fmr`` is ``None`` (unknown), never a guess
    borrowed from another model's table, and every result carries a warning.
    """

    model_id: str
    score_threshold: float

    def threshold(self, target_fmr: float) -> float:
        return self.score_threshold

    def estimated_fmr(self, score: float) -> float | None:
        return None

    @property
    def fmr_floor(self) -> float | None:
        return None  # nothing was measured

    @property
    def warning(self) -> str:
        return UNCALIBRATED_WARNING.format(model=self.model_id, threshold=self.score_threshold)


Scoring = Calibration | Uncalibrated


@dataclass(frozen=True)
class MigrationReport:
    """What :meth:`GalleryService.finish_migration` did (or would do): one gallery moving to another model."""

    tenant_id: str
    old_model_id: str | None
    new_model_id: str
    switched: bool
    subjects: int
    subjects_migrated: int
    faces_migrated: int
    old_faces_removed: int
    without_new_faces: list[dict[str, str]] = field(default_factory=list)  # subject id and name

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id, "old_model_id": self.old_model_id, "new_model_id": self.new_model_id,
            "switched": self.switched, "subjects": self.subjects, "subjects_migrated": self.subjects_migrated,
            "faces_migrated": self.faces_migrated, "old_faces_removed": self.old_faces_removed,
            "without_new_faces": self.without_new_faces,
        }


ChipSink = Callable[[TenantRecord, SubjectRecord, str, np.ndarray], None]
"""Keeps an enrolled face's aligned chip (tenant, subject, face id, 150 x 150 RGB): the console's thumbnails (#6)."""


def new_id(prefix: str) -> str:
    """Random, unguessable, non-sequential ids (128 bits)."""
    return prefix + secrets.token_hex(14)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class SubjectView:
    id: str
    display_name: str
    consent_basis: str
    consent_reference: str
    consent_given_at: datetime
    consent_expires_at: datetime | None
    created_at: datetime
    faces: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class FaceView:
    id: str
    subject_id: str
    quality: dict[str, float]
    box: dict[str, int]
    image_sha256: str
    duplicate: bool = False


@dataclass(frozen=True)
class Candidate:
    subject_id: str
    display_name: str
    score: float
    estimated_fmr: float | None  # None: the model is uncalibrated
    decision: Decision
    rank: int
    face_id: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject_id": self.subject_id, "display_name": self.display_name, "score": round(self.score, 5),
            "estimated_fmr": self.estimated_fmr, "decision": self.decision.value, "rank": self.rank,
            "lead_only": True,
        }


@dataclass(frozen=True)
class SearchResult:
    candidates: list[Candidate]
    probe: dict[str, Any]
    faces_in_probe: int
    gallery_size: int
    threshold: float
    target_fmr: float
    probe_sha256: str
    warnings: list[str]
    model_id: str
    calibrated: bool = True
    fmr_resolution: float | None = None  # 1 / impostor pairs the table was measured on

    def as_dict(self) -> dict[str, Any]:
        return {
            "candidates": [c.as_dict() for c in self.candidates],
            "probe_face": self.probe,
            "faces_in_probe": self.faces_in_probe,
            "gallery_faces": self.gallery_size,
            "threshold": {"score": self.threshold, "target_fmr": self.target_fmr, "fmr_resolution": self.fmr_resolution},
            "warnings": self.warnings,
            "model_id": self.model_id,
            "calibrated": self.calibrated,
            "notice": LEAD_NOTICE,
        }


@dataclass(frozen=True)
class VerifyResult:
    score: float
    estimated_fmr: float | None  # None: the model is uncalibrated
    decision: Decision
    threshold: float
    compared_faces: int
    warnings: list[str] = field(default_factory=list)
    fmr_resolution: float | None = None  # 1 / impostor pairs the table was measured on

    @property
    def calibrated(self) -> bool:
        return self.estimated_fmr is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 5), "estimated_fmr": self.estimated_fmr, "decision": self.decision.value,
            "threshold": self.threshold, "compared_faces": self.compared_faces, "calibrated": self.calibrated,
            "fmr_resolution": self.fmr_resolution, "warnings": self.warnings, "notice": LEAD_NOTICE,
        }


TRANSFORM_GENERATION = "template_transform_generation"
"""Tenant setting: which generation of the tenant's template transform the engine holds (decision 016)."""


class GalleryService:
    def __init__(
        self,
        store: SqlStore,
        keyring: TenantKeyWrapper,
        settings: Settings,
        *,
        engine: FaceEngine | None = None,
        clock: Callable[[], datetime] = utcnow,
        index_factory: Callable[[str], Any] | None = None,
        ledger: ErasureLedger | None = None,
    ) -> None:
        self.store = store
        self.ledger = ledger or ErasureLedger(settings.erasure_ledger_file)
        self.keyring = keyring
        self.settings = settings
        self.clock = clock
        self._engine = engine
        self._vision_lock = threading.Lock()
        self.remote: RemoteEngine | None = None  # the server analyses in worker processes (see vision.remote)
        self.index_factory: Callable[[str], Any] = index_factory or self._configured_index
        self.indexes = SearchIndexes(store, self._open_templates, self.index_factory, self._purge_engine)
        self.limits = QualityLimits(
            settings.min_face_px, settings.min_sharpness, settings.min_detector_score, settings.min_frontalness
        )
        self._tenant_key = lru_cache(maxsize=4096)(self._load_tenant_key)
        self._subject_key = lru_cache(maxsize=65536)(self._load_subject_key)
        self.chip_sink: ChipSink | None = None  # set by the app: see faceward.services.thumbnails

    def _configured_index(self, tenant_id: str) -> Any:
        """A new index of the configured backend (``FACEWARD_INDEX_BACKEND``) sized for this tenant's gallery."""
        # Imported here, not at the top: the factory imports usearch, and loading usearch before
        # onnxruntime makes onnxruntime's import segfault (usearch 2.26.6, onnxruntime 1.32.0), which
        # took down `faceward enroll` and `faceward serve` whenever the face engine loaded after this module.
        from faceward.index.factory import make_index
        from faceward.index.protected import ProtectedIndex

        dim = self.gallery_dim(tenant_id)
        index = make_index(self.settings.index_backend, dim=dim, tenant_id=tenant_id, options=self.settings.index_options)
        if self.settings.index_backend is not IndexBackend.MILVUS:
            return index
        # What leaves the process is a protected template (decision 016): rotated by the tenant's secret matrix.
        generation = int(self.store.get_tenant(tenant_id).settings.get(TRANSFORM_GENERATION, 0))
        return ProtectedIndex(index, template_transform(self.tenant_key(tenant_id), tenant_id, dim, generation))

    def _purge_engine(self, tenant_id: str) -> None:
        """Delete a tenant's vectors from a persistent engine (Milvus) this process has not opened."""
        if self.settings.index_backend is not IndexBackend.MILVUS:
            return
        from faceward.index.factory import make_index

        index: Any = make_index(IndexBackend.MILVUS, tenant_id=tenant_id, options=self.settings.index_options)
        index.drop()
        index.close()

    # -- engine and keys ------------------------------------------------------------

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
    def embedding_size(self) -> int:
        """The size of the engine's templates (dlib's 128 unless a recognizer manifest says otherwise)."""
        return self.engine.embedding_size

    @property
    def calibration(self) -> Scoring:
        """The engine's calibration table (shipped, or measured beside its manifest); else its manifest's threshold."""
        try:
            return lookup(self.model_id, self.engine.manifest)
        except ConfigError:
            manifest = self.engine.manifest
            if manifest is None:
                raise
            return Uncalibrated(self.model_id, manifest.threshold)

    def gallery_model(self, tenant_id: str) -> str | None:
        """The model id the tenant's gallery holds (``None`` before its first enrollment)."""
        model = self.store.get_tenant(tenant_id).settings.get("model_id")
        return str(model) if model else None

    def gallery_dim(self, tenant_id: str) -> int:
        """The size of the tenant's templates: recorded at first enrollment; dlib's 128 for older galleries."""
        settings = self.store.get_tenant(tenant_id).settings
        if settings.get("model_id"):
            return int(settings.get("embedding_size", DLIB_EMBEDDING_SIZE))
        return self.embedding_size

    def _load_tenant_key(self, tenant_id: str) -> bytes:
        tenant = self.store.get_tenant(tenant_id)
        if tenant.wrapped_key is None:
            raise NotFound("no such tenant")
        return self.keyring.tenant_key(tenant_id, tenant.wrapped_key)

    def _load_subject_key(self, tenant_id: str, subject_id: str, wrapped: bytes) -> bytes:
        return Keyring.subject_key(self._tenant_key(tenant_id), tenant_id, subject_id, wrapped)

    def tenant_key(self, tenant_id: str) -> bytes:
        return self._tenant_key(tenant_id)

    def _subject_key_for(self, record: SubjectRecord) -> bytes:
        return self._subject_key(record.tenant_id, record.id, record.wrapped_key)

    def _open_templates(self, faces: list[FaceRecord]) -> np.ndarray:
        """The faces' templates, ``N x d``; NaN rows for faces nothing may search.

        Those are faces of an erased subject and, during a migration, the new
        model's templates (and, after it, any left of the old model): only the
        gallery's own model is ever searched.
        """
        tenant_id = faces[0].tenant_id
        settings = self.store.get_tenant(tenant_id).settings
        model = settings.get("model_id")
        dim = int(settings.get("embedding_size", DLIB_EMBEDDING_SIZE)) if model else self.embedding_size
        subjects = self.store.subjects_by_id(tenant_id, sorted({f.subject_id for f in faces}))
        out = np.full((len(faces), dim), np.nan, dtype=np.float32)
        for row, face in enumerate(faces):
            if face.subject_id not in subjects or (model and face.model_id != model):
                continue
            key = self._subject_key_for(subjects[face.subject_id])
            vector = from_template(open_sealed(key, face.template_sealed, aad(tenant_id, "faces", face.id)))
            if len(vector) == dim:
                out[row] = vector
        return out

    def forget_keys(self) -> None:
        self._tenant_key.cache_clear()
        self._subject_key.cache_clear()

    # -- tenants --------------------------------------------------------------------

    def create_tenant(self, name: str) -> str:
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput("a tenant name of 1 to 200 characters is required")
        tenant_id = new_id("t_")
        key = new_key()
        self.store.add_tenant(
            TenantRecord(
                id=tenant_id,
                name_sealed=seal(key, name.encode(), aad(tenant_id, "tenants", "name")),
                wrapped_key=self.keyring.wrap_tenant_key(tenant_id, key),
                status="active",
                created_at=self.clock(),
                settings={},
            )
        )
        return tenant_id

    def tenant_name(self, record: TenantRecord) -> str:
        if record.wrapped_key is None:
            return "(shredded)"
        key = self._tenant_key(record.id)
        return open_sealed(key, record.name_sealed, aad(record.id, "tenants", "name")).decode()

    def active_tenant(self, tenant_id: str) -> TenantRecord:
        tenant = self.store.get_tenant(tenant_id)
        if tenant.wrapped_key is None:
            raise NotFound("no such tenant")
        if tenant.status != "active":
            raise TenantSuspended("this organisation's access is suspended")
        return tenant

    # -- subjects -------------------------------------------------------------------

    def external_ref(self, tenant_id: str, reference: str) -> str:
        return hmac.new(self._tenant_key(tenant_id), b"ref:" + reference.encode(), hashlib.sha256).hexdigest()

    def subject_for_ref(self, tenant_id: str, reference: str) -> SubjectView | None:
        record = self.store.subject_by_ref(tenant_id, self.external_ref(tenant_id, reference))
        return self._view(record) if record else None

    def create_subject(
        self, tenant_id: str, display_name: str, consent: Consent, *, reference: str | None = None
    ) -> SubjectView:
        """Create a subject with its consent record; ``reference`` (kept only as a keyed hash) makes it findable again."""
        self.active_tenant(tenant_id)
        display_name = display_name.strip()
        if not display_name or len(display_name) > 200:
            raise InvalidInput("a display name of 1 to 200 characters is required")
        subject_id = new_id("s_")
        key = new_key()
        now = self.clock()
        record = SubjectRecord(
            id=subject_id,
            tenant_id=tenant_id,
            display_name_sealed=seal(key, display_name.encode(), aad(tenant_id, "subjects", subject_id, "name")),
            consent_basis=consent.basis.value,
            consent_reference_sealed=seal(key, consent.reference.encode(), aad(tenant_id, "subjects", subject_id, "consent")),
            consent_given_at=consent.given_at,
            consent_expires_at=consent.expires_at,
            wrapped_key=Keyring.wrap_subject_key(self._tenant_key(tenant_id), tenant_id, subject_id, key),
            created_at=now,
            external_ref=self.external_ref(tenant_id, reference) if reference else None,
        )
        self.store.add_subject(record)
        return self._view(record, faces=[])

    def _view(self, record: SubjectRecord, faces: list[FaceRecord] | None = None) -> SubjectView:
        key = self._subject_key_for(record)
        t, s = record.tenant_id, record.id
        return SubjectView(
            id=s,
            display_name=open_sealed(key, record.display_name_sealed, aad(t, "subjects", s, "name")).decode(),
            consent_basis=record.consent_basis,
            consent_reference=open_sealed(key, record.consent_reference_sealed, aad(t, "subjects", s, "consent")).decode(),
            consent_given_at=record.consent_given_at,
            consent_expires_at=record.consent_expires_at,
            created_at=record.created_at,
            faces=[{"id": f.id, "quality": f.quality, "model_id": f.model_id, "created_at": f.created_at} for f in faces or []],
        )

    def get_subject(self, tenant_id: str, subject_id: str) -> SubjectView:
        record = self.store.get_subject(tenant_id, subject_id)
        return self._view(record, self.store.faces_of(tenant_id, subject_id))

    def list_subjects(self, tenant_id: str, *, limit: int = 50, offset: int = 0) -> list[SubjectView]:
        if not 1 <= limit <= 500 or offset < 0:
            raise InvalidInput("limit must be 1..500 and offset >= 0")
        return [self._view(r) for r in self.store.list_subjects(tenant_id, limit=limit, offset=offset)]

    def delete_subject(self, tenant_id: str, subject_id: str) -> list[str]:
        """Erase: faces, vectors, name and the subject key go in one transaction, and leave the index at once.

        The erasure is written to the erasure ledger (fsynced) first, so that a
        restore of an older backup erases the subject again; a crash between the
        two leaves a ledger entry for a stored subject, which ``faceward doctor
        --repair`` finishes erasing.
        """
        self.store.get_subject(tenant_id, subject_id)  # NotFound before anything is written
        moment = self.clock()
        self.ledger.record_subject(tenant_id, subject_id, at=moment)
        seqs = [face.seq for face in self.store.faces_of(tenant_id, subject_id)]
        face_ids = self.store.delete_subject(tenant_id, subject_id, at=moment)
        self.indexes.forget_subject(tenant_id, subject_id, seqs)
        self._subject_key.cache_clear()
        return face_ids

    # -- vision ---------------------------------------------------------------------

    def _faces(self, image: bytes, tenant_id: str = "") -> tuple[list[Face], str]:
        digest = hashlib.sha256(image).hexdigest()
        if self.remote is not None:
            return self.remote.analyze(image, tenant=tenant_id)[0], digest
        with self._vision_lock:
            faces, _ = self.engine.read(image, max_bytes=self.settings.max_image_bytes, max_pixels=self.settings.max_image_pixels)
        return faces, digest

    def detect(self, tenant_id: str, image: bytes) -> tuple[list[Face], tuple[int, int], str]:
        """The faces in ``image``, largest first (the order :meth:`search`'s ``face`` counts in), with boxes,
        chips and quality but no descriptors; the upright image's ``(width, height)``; its SHA-256. Stores nothing."""
        self.active_tenant(tenant_id)
        digest = hashlib.sha256(image).hexdigest()
        if self.remote is not None:
            faces, size = self.remote.analyze(image, embed=False, tenant=tenant_id)
            return faces, size, digest
        with self._vision_lock:
            faces, size = self.engine.read(
                image, max_bytes=self.settings.max_image_bytes, max_pixels=self.settings.max_image_pixels, embed=False
            )
        return faces, size, digest

    def _largest(self, image: bytes, what: str, tenant_id: str = "") -> tuple[Face, int, str]:
        faces, digest = self._faces(image, tenant_id)
        if not faces:
            raise NoFaceFound(f"no face was found in the {what}")
        return faces[0], len(faces), digest

    def _check_model(self, tenant: TenantRecord) -> None:
        gallery_model = tenant.settings.get("model_id")
        if gallery_model and gallery_model != self.model_id:
            raise ModelMismatch(
                f"this gallery holds {gallery_model} templates and the engine makes {self.model_id}; "
                "migrate the gallery with `faceward reenroll` to change models"
            )

    # -- enrollment -----------------------------------------------------------------

    def _admissible(self, tenant_id: str, subject_id: str) -> tuple[TenantRecord, SubjectRecord]:
        tenant = self.active_tenant(tenant_id)
        self._check_model(tenant)
        return tenant, self._consenting(tenant_id, subject_id)

    def _consenting(self, tenant_id: str, subject_id: str) -> SubjectRecord:
        subject = self.store.get_subject(tenant_id, subject_id)
        if subject.consent_expires_at is not None and _aware(subject.consent_expires_at) <= self.clock():
            raise InvalidInput("this subject's consent has expired; record a new consent before enrolling", code="consent_expired")
        return subject

    def enroll(self, tenant_id: str, subject_id: str, image: bytes) -> FaceView:
        """Enroll the face in ``image``: exactly one face, passing every quality limit."""
        self._admissible(tenant_id, subject_id)
        faces, digest = self._faces(image, tenant_id)
        if not faces:
            raise NoFaceFound("no face was found in the image")
        face = faces[0]
        assert face.descriptor is not None
        return self.admit(
            tenant_id, subject_id, face.descriptor, face.quality, face.box.as_dict(), digest, len(faces), chip=face.chip
        )

    def admit(
        self,
        tenant_id: str,
        subject_id: str,
        descriptor: np.ndarray,
        quality: Quality,
        box: dict[str, int],
        digest: str,
        faces_in_image: int,
        *,
        chip: np.ndarray | None = None,
    ) -> FaceView:
        """Gate an analysed face on quality and store its sealed template. Idempotent per (subject, image).

        ``chip``, the face's aligned crop, goes to :attr:`chip_sink` (the thumbnail a reviewer sees);
        a failure there is logged and never fails the enrollment.
        """
        tenant, subject = self._admissible(tenant_id, subject_id)
        view = self._store_face(tenant, subject, descriptor, quality, box, digest, faces_in_image, claim=True)
        if chip is not None and self.chip_sink is not None and not view.duplicate:
            try:
                self.chip_sink(tenant, subject, view.id, chip)
            except Exception:
                log.exception("could not keep the thumbnail of face %s", view.id)
        return view

    def _store_face(
        self, tenant: TenantRecord, subject: SubjectRecord, descriptor: np.ndarray, quality: Quality,
        box: dict[str, int], digest: str, faces_in_image: int, *, claim: bool,
    ) -> FaceView:
        """Gate and store one template of the engine's model; ``claim`` records that model for a gallery without one."""
        tenant_id, subject_id = subject.tenant_id, subject.id
        if faces_in_image > 1:
            raise LowQualityFace([f"{faces_in_image} faces in the image; enroll photos showing only the subject"])
        problems = refusals(quality, self.limits)
        if problems:
            raise LowQualityFace(problems)
        for existing in self.store.faces_of(tenant_id, subject_id):
            if existing.image_sha256 == digest and existing.model_id == self.model_id:
                return FaceView(existing.id, subject_id, existing.quality, box, digest, duplicate=True)
        if claim and not tenant.settings.get("model_id"):
            self.store.update_tenant(
                tenant_id, settings={**tenant.settings, "model_id": self.model_id, "embedding_size": int(len(descriptor))}
            )
        elif claim and int(tenant.settings.get("embedding_size", len(descriptor))) != len(descriptor):
            raise InvalidInput(
                f"this gallery's templates have {tenant.settings['embedding_size']} values, not {len(descriptor)}"
            )
        face_id = new_id("f_")
        key = self._subject_key_for(subject)
        try:
            self.store.add_face(
                FaceRecord(
                    id=face_id,
                    tenant_id=tenant_id,
                    subject_id=subject_id,
                    model_id=self.model_id,
                    template_sealed=seal(key, to_template(descriptor), aad(tenant_id, "faces", face_id)),
                    quality=quality.as_dict(),
                    image_sha256=digest,
                    created_at=self.clock(),
                )
            )
        except Conflict:
            # The same photo, enrolled concurrently (a retry, another worker), won the unique
            # (subject, image, model) index: answer with the face it stored.
            for existing in self.store.faces_of(tenant_id, subject_id):
                if existing.image_sha256 == digest and existing.model_id == self.model_id:
                    return FaceView(existing.id, subject_id, existing.quality, box, digest, duplicate=True)
            raise
        return FaceView(face_id, subject_id, quality.as_dict(), box, digest)

    # -- model migration ------------------------------------------------------------
    #
    # Run on a service whose engine makes the *new* model's templates. The new
    # templates are stored beside the old ones under their own model id, where
    # nothing searches them (``_open_templates`` serves the gallery's model only);
    # ``finish_migration`` switches the gallery's model id in one write, then
    # removes the old templates. Enrollment should pause meanwhile: faces the old
    # model enrolls during a migration are removed at the switch.

    def begin_migration(self, tenant_id: str) -> str:
        """Start, or resume, moving the tenant's gallery to this engine's model; returns the gallery's current model."""
        tenant = self.active_tenant(tenant_id)
        current = tenant.settings.get("model_id")
        if not current:
            raise InvalidInput("this gallery has no templates yet: enroll with the new model directly", code="nothing_to_migrate")
        if current == self.model_id:
            raise InvalidInput(f"this gallery already holds {current} templates", code="already_migrated")
        target = tenant.settings.get(MIGRATION_KEY) or {}
        if target.get("model_id") != self.model_id:
            self.store.update_tenant(tenant_id, settings={
                **tenant.settings,
                MIGRATION_KEY: {"model_id": self.model_id, "embedding_size": self.embedding_size,
                                "started_at": self.clock().isoformat()},
            })
        return str(current)

    def _migration_target(self, tenant: TenantRecord) -> dict[str, Any]:
        target = tenant.settings.get(MIGRATION_KEY) or {}
        if target.get("model_id") != self.model_id:
            raise ModelMismatch(
                f"no migration of this gallery to {self.model_id} is under way (its model is "
                f"{tenant.settings.get('model_id')}); begin the migration first"
            )
        return dict(target)

    def admit_migrated(
        self,
        tenant_id: str,
        subject_id: str,
        descriptor: np.ndarray,
        quality: Quality,
        box: dict[str, int],
        digest: str,
        faces_in_image: int,
    ) -> FaceView:
        """Store the new model's template of an image the subject already has in the gallery (same SHA-256).

        Only images already enrolled for this subject migrate: a migration
        re-derives templates, it never adds photos. Quality limits and consent
        apply as at enrollment. Idempotent per (subject, image), so a migration resumes.
        """
        tenant = self.active_tenant(tenant_id)
        target = self._migration_target(tenant)
        subject = self._consenting(tenant_id, subject_id)
        if len(descriptor) != int(target["embedding_size"]):
            raise InvalidInput(f"a {self.model_id} template has {target['embedding_size']} values, not {len(descriptor)}")
        if not self.store.has_image(tenant_id, subject_id, digest):
            raise InvalidInput("this image is not enrolled for the subject; a migration never adds photos", code="not_in_gallery")
        return self._store_face(tenant, subject, descriptor, quality, box, digest, faces_in_image, claim=False)

    def finish_migration(self, tenant_id: str, *, require_all: bool = False) -> MigrationReport:
        """Switch the gallery to the new model, then remove the old model's templates.

        Subjects left without a template of the new model (no folder, no image
        that passed, consent expired) are listed in the report; they stay in the
        gallery, unsearchable until enrolled again. With ``require_all`` the switch
        happens only when there are none; it never happens when no template of
        the new model was built at all (nothing is changed then).
        """
        tenant = self.active_tenant(tenant_id)
        target = self._migration_target(tenant)
        old_model = tenant.settings.get("model_id")
        new_faces: dict[str, int] = {}
        stale: list[str] = []
        after = 0
        while batch := self.store.faces_since(tenant_id, after, limit=5000):
            for face in batch:
                if face.model_id == self.model_id:
                    new_faces[face.subject_id] = new_faces.get(face.subject_id, 0) + 1
                else:
                    stale.append(face.id)
            after = batch[-1].seq
        subjects = self._all_subjects(tenant_id)
        without = [
            {"subject_id": record.id, "display_name": self._view(record).display_name}
            for record in subjects
            if record.id not in new_faces
        ]
        report = MigrationReport(
            tenant_id, str(old_model) if old_model else None, self.model_id, False, len(subjects),
            len(subjects) - len(without), sum(new_faces.values()), 0, without,
        )
        if not new_faces or (require_all and without):
            return report  # never switch to an empty gallery
        settings = {k: v for k, v in tenant.settings.items() if k != MIGRATION_KEY}
        settings.update(model_id=self.model_id, embedding_size=int(target["embedding_size"]))
        self.store.update_tenant(tenant_id, settings=settings)  # the switch: one write
        self.indexes.erase_tenant(tenant_id)  # a persistent engine's collection holds the old model's size
        removed = self._remove_faces(tenant_id, stale)
        self.indexes.drop_tenant(tenant_id)
        return replace(report, switched=True, old_faces_removed=removed)

    def _all_subjects(self, tenant_id: str) -> list[SubjectRecord]:
        out: list[SubjectRecord] = []
        while page := self.store.list_subjects(tenant_id, limit=500, offset=len(out)):
            out.extend(page)
        return out

    def _remove_faces(self, tenant_id: str, face_ids: list[str]) -> int:
        from faceward.store.integrity import IntegrityStore

        integrity = IntegrityStore(self.store)
        return sum(integrity.delete_faces(tenant_id, face_ids[i : i + 500]) for i in range(0, len(face_ids), 500))

    # -- search and verify ----------------------------------------------------------

    def search(self, tenant_id: str, image: bytes, *, k: int = 10, face: int | None = None) -> SearchResult:
        """Search with the largest face of the probe, or with its ``face``-th (0 = largest, as :meth:`detect` lists them)."""
        if not 1 <= k <= MAX_K:
            raise InvalidInput(f"k must be between 1 and {MAX_K}")
        tenant = self.active_tenant(tenant_id)
        self._check_model(tenant)
        if face is None:
            probe, count, digest = self._largest(image, "probe", tenant_id)
        else:
            found, digest = self._faces(image, tenant_id)
            count = len(found)
            if not 0 <= face < count:
                raise InvalidInput(f"the probe shows {count} face(s); face must be 0 to {count - 1}", code="no_such_face")
            probe = found[face]
        warnings = [f"probe quality: {p}" for p in refusals(probe.quality, self.limits)]
        if count > 1:
            warnings.append(f"{count} faces in the probe; searched the largest" if face is None
                            else f"{count} faces in the probe; searched face {face + 1}")
        entry = self.indexes.get(tenant_id)
        gallery = len(entry.index)
        calibration = self.calibration
        threshold = calibration.threshold(self.settings.target_fmr)
        if isinstance(calibration, Uncalibrated):
            warnings.append(calibration.warning)
        assert probe.descriptor is not None
        labels, scores = entry.index.search(probe.descriptor[None, :], min(gallery, k * 8) or 1)
        best: dict[str, tuple[float, str]] = {}
        for label, score in zip(labels[0], scores[0]):
            owner = entry.owner.get(int(label))
            if label < 0 or owner is None:
                continue
            face_id, subject_id = owner
            if subject_id not in best or score > best[subject_id][0]:
                best[subject_id] = (float(score), face_id)
        ranked = sorted(best.items(), key=lambda item: -item[1][0])[:k]
        records = self.store.subjects_by_id(tenant_id, [s for s, _ in ranked])
        candidates: list[Candidate] = []
        for subject_id, (score, face_id) in ranked:
            record = records.get(subject_id)
            if record is None:  # erased between index and read: never show it
                continue
            name = self._view(record).display_name
            candidates.append(
                Candidate(
                    subject_id, name, score, calibration.estimated_fmr(score),
                    Decision.LEAD if score >= threshold else Decision.BELOW_THRESHOLD,
                    len(candidates) + 1, face_id,
                )
            )
        return SearchResult(
            candidates, probe.summary(), count, gallery, threshold, self.settings.target_fmr, digest, warnings,
            self.model_id, calibrated=not isinstance(calibration, Uncalibrated), fmr_resolution=calibration.fmr_floor,
        )

    def gallery_threshold(self, gallery_size: int, target_fpir: float) -> float:
        """Score threshold that holds the open-set false positive identification rate at ``target_fpir``.

        An uncalibrated model has one fixed threshold, whatever the gallery size.
        """
        return self.calibration.threshold(fpir_threshold_fmr(target_fpir, gallery_size))

    def _verdict(self, score: float, compared: int) -> VerifyResult:
        calibration = self.calibration
        threshold = calibration.threshold(self.settings.target_fmr)
        decision = Decision.LEAD if score >= threshold else Decision.BELOW_THRESHOLD
        warnings = [calibration.warning] if isinstance(calibration, Uncalibrated) else []
        return VerifyResult(
            score, calibration.estimated_fmr(score), decision, threshold, compared, warnings, calibration.fmr_floor
        )

    def verify_images(self, tenant_id: str, image_a: bytes, image_b: bytes) -> VerifyResult:
        self.active_tenant(tenant_id)
        face_a, _, _ = self._largest(image_a, "first image", tenant_id)
        face_b, _, _ = self._largest(image_b, "second image", tenant_id)
        assert face_a.descriptor is not None and face_b.descriptor is not None
        return self._verdict(float(face_a.descriptor @ face_b.descriptor), 1)

    def verify_subject(self, tenant_id: str, image: bytes, subject_id: str) -> VerifyResult:
        """Compare against every face of the subject; the best match decides."""
        tenant = self.active_tenant(tenant_id)
        self._check_model(tenant)
        subject = self.store.get_subject(tenant_id, subject_id)
        faces = [f for f in self.store.faces_of(tenant_id, subject_id) if f.model_id == self.model_id]
        if not faces:
            raise InvalidInput("this subject has no enrolled face yet", code="no_faces")
        probe, _, _ = self._largest(image, "image", tenant_id)
        assert probe.descriptor is not None
        key = self._subject_key_for(subject)
        gallery = np.stack([from_template(open_sealed(key, f.template_sealed, aad(tenant_id, "faces", f.id))) for f in faces])
        return self._verdict(float(np.max(gallery @ probe.descriptor)), len(faces))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
