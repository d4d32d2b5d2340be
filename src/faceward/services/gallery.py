"""Gallery use cases: tenants' subjects, consent-gated enrollment, search and verify.

The service owns transactions and sealing: the store only ever sees sealed
bytes for names, consent references and templates. Results are leads for a
person to review, with a calibrated false-match estimate, never identifications.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import numpy as np

from faceward.errors import FacewardError, InvalidInput, NotFound
from faceward.scoring import Calibration, Decision, fpir_threshold_fmr, load_calibration
from faceward.security.crypto import Keyring, aad, new_key, open_sealed, seal
from faceward.services.consent import Consent
from faceward.services.ledger import ErasureLedger
from faceward.services.search_index import SearchIndexes
from faceward.settings import Settings
from faceward.store import FaceRecord, SqlStore, SubjectRecord, TenantRecord
from faceward.vision import FaceEngine, LowQualityFace, NoFaceFound, QualityLimits, decode_image, refusals
from faceward.vision.embed import from_template, to_template
from faceward.vision.types import Face, Quality

LEAD_NOTICE = "Investigative lead only: a candidate must be reviewed by a trained person; it is not an identification."
MAX_K = 50


class ModelMismatch(FacewardError):
    code = "model_mismatch"
    status = 409


class TenantSuspended(FacewardError):
    code = "tenant_suspended"
    status = 403


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
    estimated_fmr: float
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "candidates": [c.as_dict() for c in self.candidates],
            "probe_face": self.probe,
            "faces_in_probe": self.faces_in_probe,
            "gallery_faces": self.gallery_size,
            "threshold": {"score": self.threshold, "target_fmr": self.target_fmr},
            "warnings": self.warnings,
            "model_id": self.model_id,
            "notice": LEAD_NOTICE,
        }


@dataclass(frozen=True)
class VerifyResult:
    score: float
    estimated_fmr: float
    decision: Decision
    threshold: float
    compared_faces: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 5), "estimated_fmr": self.estimated_fmr, "decision": self.decision.value,
            "threshold": self.threshold, "compared_faces": self.compared_faces, "notice": LEAD_NOTICE,
        }


class GalleryService:
    def __init__(
        self,
        store: SqlStore,
        keyring: Keyring,
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
        self.indexes = SearchIndexes(store, self._open_templates, index_factory)
        self.limits = QualityLimits(
            settings.min_face_px, settings.min_sharpness, settings.min_detector_score, settings.min_frontalness
        )
        self._tenant_key = lru_cache(maxsize=4096)(self._load_tenant_key)
        self._subject_key = lru_cache(maxsize=65536)(self._load_subject_key)

    # -- engine and keys ------------------------------------------------------------

    @property
    def engine(self) -> FaceEngine:
        if self._engine is None:
            from faceward.vision import EngineOptions

            self._engine = FaceEngine(EngineOptions.from_settings(self.settings))
        return self._engine

    @property
    def model_id(self) -> str:
        base = self.engine.model_id
        return f"{base}/flip" if self.engine.options.flip_average else base

    @property
    def calibration(self) -> Calibration:
        return load_calibration(self.model_id)

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
        tenant_id = faces[0].tenant_id
        subjects = self.store.subjects_by_id(tenant_id, sorted({f.subject_id for f in faces}))
        out = np.full((len(faces), 128), np.nan, dtype=np.float32)
        for row, face in enumerate(faces):
            if face.subject_id not in subjects:
                continue
            key = self._subject_key_for(subjects[face.subject_id])
            out[row] = from_template(open_sealed(key, face.template_sealed, aad(tenant_id, "faces", face.id)))
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
        face_ids = self.store.delete_subject(tenant_id, subject_id, at=moment)
        self.indexes.forget_subject(tenant_id, subject_id)
        self._subject_key.cache_clear()
        return face_ids

    # -- vision ---------------------------------------------------------------------

    def _faces(self, image: bytes) -> tuple[list[Face], str]:
        digest = hashlib.sha256(image).hexdigest()
        pixels = decode_image(image, max_bytes=self.settings.max_image_bytes, max_pixels=self.settings.max_image_pixels)
        with self._vision_lock:
            faces = self.engine.analyze(pixels)
        return faces, digest

    def _largest(self, image: bytes, what: str) -> tuple[Face, int, str]:
        faces, digest = self._faces(image)
        if not faces:
            raise NoFaceFound(f"no face was found in the {what}")
        return faces[0], len(faces), digest

    def _check_model(self, tenant: TenantRecord) -> None:
        gallery_model = tenant.settings.get("model_id")
        if gallery_model and gallery_model != self.model_id:
            raise ModelMismatch(
                f"this gallery holds {gallery_model} templates and the engine makes {self.model_id}; "
                "re-enroll the gallery to change models"
            )

    # -- enrollment -----------------------------------------------------------------

    def _admissible(self, tenant_id: str, subject_id: str) -> tuple[TenantRecord, SubjectRecord]:
        tenant = self.active_tenant(tenant_id)
        self._check_model(tenant)
        subject = self.store.get_subject(tenant_id, subject_id)
        if subject.consent_expires_at is not None and _aware(subject.consent_expires_at) <= self.clock():
            raise InvalidInput("this subject's consent has expired; record a new consent before enrolling", code="consent_expired")
        return tenant, subject

    def enroll(self, tenant_id: str, subject_id: str, image: bytes) -> FaceView:
        """Enroll the face in ``image``: exactly one face, passing every quality limit."""
        self._admissible(tenant_id, subject_id)
        faces, digest = self._faces(image)
        if not faces:
            raise NoFaceFound("no face was found in the image")
        face = faces[0]
        assert face.descriptor is not None
        return self.admit(tenant_id, subject_id, face.descriptor, face.quality, face.box.as_dict(), digest, len(faces))

    def admit(
        self,
        tenant_id: str,
        subject_id: str,
        descriptor: np.ndarray,
        quality: Quality,
        box: dict[str, int],
        digest: str,
        faces_in_image: int,
    ) -> FaceView:
        """Gate an analysed face on quality and store its sealed template. Idempotent per (subject, image)."""
        tenant, subject = self._admissible(tenant_id, subject_id)
        if faces_in_image > 1:
            raise LowQualityFace([f"{faces_in_image} faces in the image; enroll photos showing only the subject"])
        problems = refusals(quality, self.limits)
        if problems:
            raise LowQualityFace(problems)
        for existing in self.store.faces_of(tenant_id, subject_id):
            if existing.image_sha256 == digest:
                return FaceView(existing.id, subject_id, existing.quality, box, digest, duplicate=True)
        if not tenant.settings.get("model_id"):
            self.store.update_tenant(tenant_id, settings={**tenant.settings, "model_id": self.model_id})
        face_id = new_id("f_")
        key = self._subject_key_for(subject)
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
        return FaceView(face_id, subject_id, quality.as_dict(), box, digest)

    # -- search and verify ----------------------------------------------------------

    def search(self, tenant_id: str, image: bytes, *, k: int = 10) -> SearchResult:
        if not 1 <= k <= MAX_K:
            raise InvalidInput(f"k must be between 1 and {MAX_K}")
        tenant = self.active_tenant(tenant_id)
        self._check_model(tenant)
        face, count, digest = self._largest(image, "probe")
        warnings = [f"probe quality: {p}" for p in refusals(face.quality, self.limits)]
        if count > 1:
            warnings.append(f"{count} faces in the probe; searched the largest")
        entry = self.indexes.get(tenant_id)
        gallery = len(entry.index)
        calibration = self.calibration
        threshold = calibration.threshold(self.settings.target_fmr)
        assert face.descriptor is not None
        labels, scores = entry.index.search(face.descriptor[None, :], min(gallery, k * 8) or 1)
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
        candidates = []
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
            candidates, face.summary(), count, gallery, threshold, self.settings.target_fmr, digest, warnings, self.model_id
        )

    def gallery_threshold(self, gallery_size: int, target_fpir: float) -> float:
        """Score threshold that holds the open-set false positive identification rate at ``target_fpir``."""
        return self.calibration.threshold(fpir_threshold_fmr(target_fpir, gallery_size))

    def _verdict(self, score: float, compared: int) -> VerifyResult:
        calibration = self.calibration
        threshold = calibration.threshold(self.settings.target_fmr)
        decision = Decision.LEAD if score >= threshold else Decision.BELOW_THRESHOLD
        return VerifyResult(score, calibration.estimated_fmr(score), decision, threshold, compared)

    def verify_images(self, tenant_id: str, image_a: bytes, image_b: bytes) -> VerifyResult:
        self.active_tenant(tenant_id)
        face_a, _, _ = self._largest(image_a, "first image")
        face_b, _, _ = self._largest(image_b, "second image")
        assert face_a.descriptor is not None and face_b.descriptor is not None
        return self._verdict(float(face_a.descriptor @ face_b.descriptor), 1)

    def verify_subject(self, tenant_id: str, image: bytes, subject_id: str) -> VerifyResult:
        """Compare against every face of the subject; the best match decides."""
        tenant = self.active_tenant(tenant_id)
        self._check_model(tenant)
        subject = self.store.get_subject(tenant_id, subject_id)
        faces = self.store.faces_of(tenant_id, subject_id)
        if not faces:
            raise InvalidInput("this subject has no enrolled face yet", code="no_faces")
        probe, _, _ = self._largest(image, "image")
        assert probe.descriptor is not None
        key = self._subject_key_for(subject)
        gallery = np.stack([from_template(open_sealed(key, f.template_sealed, aad(tenant_id, "faces", f.id))) for f in faces])
        return self._verdict(float(np.max(gallery @ probe.descriptor)), len(faces))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
