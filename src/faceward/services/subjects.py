"""Subjects: created with their consent record, read back opened, erased with everything they own."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime

from faceward.errors import InvalidInput
from faceward.index.tenants import SearchIndexes
from faceward.security.vault import TenantVault
from faceward.services.consent import Consent
from faceward.services.ids import new_id
from faceward.services.tenancy import Tenants
from faceward.services.views import SubjectView
from faceward.store import FaceRecord, SqlStore, SubjectRecord
from faceward.store.ledger import ErasureLedger


class Subjects:
    def __init__(
        self, store: SqlStore, vault: TenantVault, tenants: Tenants, indexes: SearchIndexes, ledger: ErasureLedger,
        clock: Callable[[], datetime],
    ) -> None:
        self.store, self.vault, self.tenants, self.indexes, self.ledger, self.clock = (
            store, vault, tenants, indexes, ledger, clock
        )

    def for_ref(self, tenant_id: str, reference: str) -> SubjectView | None:
        record = self.store.subject_by_ref(tenant_id, self.vault.external_ref(tenant_id, reference))
        return self.view(record) if record else None

    def create(self, tenant_id: str, display_name: str, consent: Consent, *, reference: str | None = None) -> SubjectView:
        """Create a subject with its consent record; ``reference`` (kept only as a keyed hash) makes it findable again."""
        self.tenants.active(tenant_id)
        display_name = display_name.strip()
        if not display_name or len(display_name) > 200:
            raise InvalidInput("a display name of 1 to 200 characters is required")
        subject_id = new_id("s_")
        sealed = self.vault.seal_new_subject(tenant_id, subject_id, display_name, consent.reference)
        record = SubjectRecord(
            id=subject_id,
            tenant_id=tenant_id,
            display_name_sealed=sealed.display_name_sealed,
            consent_basis=consent.basis.value,
            consent_reference_sealed=sealed.consent_reference_sealed,
            consent_given_at=consent.given_at,
            consent_expires_at=consent.expires_at,
            wrapped_key=sealed.wrapped_key,
            created_at=self.clock(),
            external_ref=self.vault.external_ref(tenant_id, reference) if reference else None,
        )
        self.store.add_subject(record)
        return self.view(record, faces=[])

    def name(self, record: SubjectRecord) -> str:
        return self.vault.open_subject_name(record, record.display_name_sealed)

    def view(self, record: SubjectRecord, faces: list[FaceRecord] | None = None) -> SubjectView:
        return SubjectView(
            id=record.id,
            display_name=self.name(record),
            consent_basis=record.consent_basis,
            consent_reference=self.vault.open_consent_reference(record, record.consent_reference_sealed),
            consent_given_at=record.consent_given_at,
            consent_expires_at=record.consent_expires_at,
            created_at=record.created_at,
            faces=[{"id": f.id, "quality": f.quality, "model_id": f.model_id, "created_at": f.created_at} for f in faces or []],
        )

    def get(self, tenant_id: str, subject_id: str) -> SubjectView:
        record = self.store.get_subject(tenant_id, subject_id)
        return self.view(record, self.store.faces_of(tenant_id, subject_id))

    def list(self, tenant_id: str, *, limit: int = 50, offset: int = 0) -> list[SubjectView]:
        if not 1 <= limit <= 500 or offset < 0:
            raise InvalidInput("limit must be 1..500 and offset >= 0")
        records = self.store.list_subjects(tenant_id, limit=limit, offset=offset)
        faces = self.store.faces_of_subjects(tenant_id, [r.id for r in records])
        return [self.view(r, faces[r.id]) for r in records]

    def all(self, tenant_id: str) -> builtins.list[SubjectRecord]:
        out: list[SubjectRecord] = []
        while page := self.store.list_subjects(tenant_id, limit=500, offset=len(out)):
            out.extend(page)
        return out

    def delete(self, tenant_id: str, subject_id: str) -> builtins.list[str]:
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
        face_ids = self.store.delete_subject(tenant_id, subject_id, at=moment,
                                             review_ref=self.vault.review_subject_ref(tenant_id, subject_id))
        self.indexes.forget_subject(tenant_id, subject_id, seqs)
        self.vault.forget_subjects()
        return face_ids


__all__ = ["Subjects"]
