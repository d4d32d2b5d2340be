"""Model migration: a gallery moves to another model's templates without a moment unsearchable.

Run with an engine that makes the *new* model's templates. They are stored
beside the old ones under their own model id, where nothing searches them (the
index opens the gallery's model only); :meth:`Migration.finish` switches the
gallery's model id in one write, then removes the old templates. Enrollment
should pause meanwhile: faces the old model enrolls during a migration are
removed at the switch. ``faceward reenroll`` drives it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import numpy as np

from faceward.errors import InvalidInput
from faceward.index.tenants import SearchIndexes
from faceward.services.analysis import Analysis
from faceward.services.enrollment import Enrollment
from faceward.services.subjects import Subjects
from faceward.services.tenancy import MIGRATION_KEY, ModelMismatch, Tenants
from faceward.store.profile import MigrationTarget
from faceward.services.views import FaceView, MigrationReport
from faceward.store import SqlStore, TenantRecord
from faceward.store.integrity import IntegrityStore
from faceward.vision import Embed, NoFaceFound, dominant_face
from faceward.vision.types import Quality


class Migration:
    def __init__(
        self, store: SqlStore, tenants: Tenants, subjects: Subjects, enrollment: Enrollment, analysis: Analysis,
        indexes: SearchIndexes, clock: Callable[[], datetime],
    ) -> None:
        self.store, self.tenants, self.subjects, self.enrollment = store, tenants, subjects, enrollment
        self.analysis, self.indexes, self.clock = analysis, indexes, clock

    def begin(self, tenant_id: str) -> str:
        """Start, or resume, moving the tenant's gallery to this engine's model; returns the gallery's current model."""
        tenant = self.tenants.active(tenant_id)
        model_id = self.analysis.model_id
        current = tenant.profile.model_id
        if not current:
            raise InvalidInput("this gallery has no templates yet: enroll with the new model directly", code="nothing_to_migrate")
        if current == model_id:
            raise InvalidInput(f"this gallery already holds {current} templates", code="already_migrated")
        target = tenant.profile.migrating_to
        if target is None or target.model_id != model_id:
            self.store.update_tenant(tenant_id, settings=tenant.profile.settings_with(**{
                MIGRATION_KEY: {"model_id": model_id, "embedding_size": self.analysis.embedding_size,
                                "model_sha256": self.analysis.model_sha256, "started_at": self.clock().isoformat()},
            }))
        return str(current)

    def _target(self, tenant: TenantRecord) -> MigrationTarget:
        target = tenant.profile.migrating_to
        if target is None or target.model_id != self.analysis.model_id:
            raise ModelMismatch(
                f"no migration of this gallery to {self.analysis.model_id} is under way (its model is "
                f"{tenant.profile.model_id}); begin the migration first"
            )
        return target

    def admit(
        self, tenant_id: str, subject_id: str, descriptor: np.ndarray, quality: Quality, box: dict[str, int],
        digest: str, faces_in_image: int,
    ) -> FaceView:
        """Store the new model's template of an image the subject already has in the gallery (same SHA-256).

        Only images already enrolled for this subject migrate: a migration
        re-derives templates, it never adds photos. Quality limits and consent
        apply as at enrollment. Idempotent per (subject, image), so a migration resumes.
        """
        tenant = self.tenants.active(tenant_id)
        target = self._target(tenant)
        subject = self.enrollment.consenting(tenant_id, subject_id)
        if len(descriptor) != target.embedding_size:
            raise InvalidInput(
                f"a {self.analysis.model_id} template has {target.embedding_size} values, not {len(descriptor)}"
            )
        keyed = self.store.has_image(tenant_id, subject_id, self.enrollment.vault.image_digest(tenant_id, digest))
        if not keyed and not self.store.has_image(tenant_id, subject_id, digest):  # enrolled before #12: plain
            raise InvalidInput("this image is not enrolled for the subject; a migration never adds photos", code="not_in_gallery")
        return self.enrollment.store_face(tenant, subject, descriptor, quality, box, digest, faces_in_image, claim=False)

    def admit_image(self, tenant_id: str, subject_id: str, image: bytes) -> FaceView:
        """:meth:`admit` for an uploaded photo, analysed here by the new model: its one face, or the dominant one.

        The API's ``faceward reenroll``: an admin sends each enrolled photo again. The migration
        and the subject are checked before the photo is analysed.
        """
        tenant = self.tenants.active(tenant_id)
        self.enrollment.consenting(tenant_id, subject_id)  # another tenant's subject: the 404 an unknown one gets
        self._target(tenant)
        faces, size, digest = self.analysis.read(image, tenant_id, embed=Embed.DOMINANT)
        if not faces:
            raise NoFaceFound("no face was found in the image")
        face = faces[dominant_face([f.box for f in faces], size)]
        assert face.descriptor is not None
        return self.admit(tenant_id, subject_id, face.descriptor, face.quality, face.box.as_dict(), digest, 1)

    def finish(self, tenant_id: str, *, require_all: bool = False) -> MigrationReport:
        """Switch the gallery to the new model, then remove the old model's templates.

        Subjects left without a template of the new model (no folder, no image
        that passed, consent expired) are listed in the report; they stay in the
        gallery, unsearchable until enrolled again. With ``require_all`` the switch
        happens only when there are none; it never happens when no template of
        the new model was built at all (nothing is changed then).
        """
        tenant = self.tenants.active(tenant_id)
        target = self._target(tenant)
        model_id = self.analysis.model_id
        old_model = tenant.profile.model_id
        new_faces: dict[str, int] = {}
        stale: list[str] = []
        after = 0
        while batch := self.store.faces_since(tenant_id, after, limit=5000):
            for face in batch:
                if face.model_id == model_id:
                    new_faces[face.subject_id] = new_faces.get(face.subject_id, 0) + 1
                else:
                    stale.append(face.id)
            after = batch[-1].seq
        subjects = self.subjects.all(tenant_id)
        without = [
            {"subject_id": record.id, "display_name": self.subjects.name(record)}
            for record in subjects
            if record.id not in new_faces
        ]
        report = MigrationReport(
            tenant_id, str(old_model) if old_model else None, model_id, False, len(subjects),
            len(subjects) - len(without), sum(new_faces.values()), 0, without,
        )
        if not new_faces or (require_all and without):
            return report  # never switch to an empty gallery
        settings = tenant.profile.settings_with(**{MIGRATION_KEY: None}, model_id=model_id, embedding_size=target.embedding_size,
                                                model_sha256=target.model_sha256 or self.analysis.model_sha256)
        self.store.update_tenant(tenant_id, settings=settings)  # the switch: one write
        self.indexes.erase_tenant(tenant_id)  # a persistent engine's collection holds the old model's size
        integrity = IntegrityStore(self.store)
        removed = sum(integrity.delete_faces(tenant_id, stale[i : i + 500]) for i in range(0, len(stale), 500))
        self.indexes.drop_tenant(tenant_id)
        return replace(report, switched=True, old_faces_removed=removed)


__all__ = ["Migration"]
