"""Enrollment: a consenting subject's face, gated on quality, stored as a sealed template of the gallery's model."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import numpy as np

from faceward.errors import Conflict, InvalidInput
from faceward.security.vault import TenantVault
from faceward.services.analysis import Analysis
from faceward.services.ids import aware, new_id
from faceward.services.tenancy import Tenants, check_model
from faceward.services.views import FaceView
from faceward.store import FaceRecord, SqlStore, SubjectRecord, TenantRecord
from faceward.vision import Embed, LowQualityFace, NoFaceFound, advisories, dominant_face, refusals
from faceward.vision.embed import to_template
from faceward.vision.types import Quality

log = logging.getLogger(__name__)

ChipSink = Callable[[TenantRecord, SubjectRecord, str, np.ndarray], None]
"""Keeps an enrolled face's aligned chip (tenant, subject, face id, 150 x 150 RGB): the console's thumbnails (#6)."""


class Enrollment:
    def __init__(
        self, store: SqlStore, vault: TenantVault, tenants: Tenants, analysis: Analysis, clock: Callable[[], datetime],
    ) -> None:
        self.store, self.vault, self.tenants, self.analysis, self.clock = store, vault, tenants, analysis, clock
        self.chip_sink: ChipSink | None = None  # set by the wiring: see faceward.services.thumbnails

    def admissible(self, tenant_id: str, subject_id: str) -> tuple[TenantRecord, SubjectRecord]:
        tenant = self.tenants.active(tenant_id)
        check_model(tenant, self.analysis.model_id)
        return tenant, self.consenting(tenant_id, subject_id)

    def consenting(self, tenant_id: str, subject_id: str) -> SubjectRecord:
        subject = self.store.get_subject(tenant_id, subject_id)
        if subject.consent_expires_at is not None and aware(subject.consent_expires_at) <= self.clock():
            raise InvalidInput("this subject's consent has expired; record a new consent before enrolling", code="consent_expired")
        return subject

    def enroll(self, tenant_id: str, subject_id: str, image: bytes) -> FaceView:
        """Enroll the subject's face in ``image``: its one face, or the clearly dominant one
        (:func:`faceward.vision.dominant_face`; the others are reported as bystanders), passing every quality limit.
        A face that passes them but would be a weak gallery photo is enrolled with warnings (decision 037)."""
        self.admissible(tenant_id, subject_id)
        faces, size, digest = self.analysis.read(image, tenant_id, embed=Embed.DOMINANT)
        if not faces:
            raise NoFaceFound("no face was found in the image")
        index = dominant_face([f.box for f in faces], size)  # the subject; the others are bystanders, or it refuses
        face = faces[index]
        assert face.descriptor is not None
        view = self.admit(
            tenant_id, subject_id, face.descriptor, face.quality, face.box.as_dict(), digest, 1, chip=face.picture
        )
        return replace(view, bystanders=[f.box.as_dict() for i, f in enumerate(faces) if i != index],
                       rotation_cw=face.rotation_cw)

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
        tenant, subject = self.admissible(tenant_id, subject_id)
        view = self.store_face(tenant, subject, descriptor, quality, box, digest, faces_in_image, claim=True)
        if chip is not None and self.chip_sink is not None and not view.duplicate:
            try:
                self.chip_sink(tenant, subject, view.id, chip)
            except Exception:
                log.exception("could not keep the thumbnail of face %s", view.id)
        return view

    def _existing(self, subject: SubjectRecord, digest: str, box: dict[str, int]) -> FaceView | None:
        # Faces enrolled before the keyed digest (#12) still hold the plain SHA-256.
        stored = (self.vault.image_digest(subject.tenant_id, digest), digest)
        for existing in self.store.faces_of(subject.tenant_id, subject.id):
            if existing.image_sha256 in stored and existing.model_id == self.analysis.model_id:
                return FaceView(existing.id, subject.id, existing.quality, box, digest, duplicate=True)
        return None

    def store_face(
        self, tenant: TenantRecord, subject: SubjectRecord, descriptor: np.ndarray, quality: Quality,
        box: dict[str, int], digest: str, faces_in_image: int, *, claim: bool,
    ) -> FaceView:
        """Gate and store one template of the engine's model; ``claim`` records that model for a gallery without one."""
        tenant_id, subject_id = subject.tenant_id, subject.id
        model_id = self.analysis.model_id
        if faces_in_image > 1:
            raise LowQualityFace([f"{faces_in_image} faces in the image; enroll photos showing only the subject"])
        problems = refusals(quality, self.analysis.limits)
        if problems:
            raise LowQualityFace(problems)
        if (duplicate := self._existing(subject, digest, box)) is not None:
            return replace(duplicate, warnings=advisories(quality))
        profile = tenant.profile
        if claim and profile.model_id is None:
            self.store.update_tenant(tenant_id, settings=profile.settings_with(
                model_id=model_id, embedding_size=int(len(descriptor)), model_sha256=self.analysis.model_sha256,
            ))
        elif claim and (profile.recorded_embedding_size or len(descriptor)) != len(descriptor):
            raise InvalidInput(
                f"this gallery's templates have {profile.recorded_embedding_size} values, not {len(descriptor)}"
            )
        face_id = new_id("f_")
        try:
            self.store.add_face(
                FaceRecord(
                    id=face_id,
                    tenant_id=tenant_id,
                    subject_id=subject_id,
                    model_id=model_id,
                    model_sha256=self.analysis.model_sha256,
                    template_sealed=self.vault.seal_template(subject, face_id, to_template(descriptor)),
                    quality=quality.as_dict(),
                    image_sha256=self.vault.image_digest(tenant_id, digest),  # keyed: the photo's SHA-256 stays out
                    created_at=self.clock(),
                )
            )
        except Conflict:
            # The same photo, enrolled concurrently (a retry, another worker), won the unique
            # (subject, image, model) index: answer with the face it stored.
            if (duplicate := self._existing(subject, digest, box)) is not None:
                return replace(duplicate, warnings=advisories(quality))
            raise
        return FaceView(face_id, subject_id, quality.as_dict(), box, digest, warnings=advisories(quality))


__all__ = ["ChipSink", "Enrollment"]
