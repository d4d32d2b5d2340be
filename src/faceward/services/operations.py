"""The acts the REST API, the CLI and the web console call: one method per act.

Every act passes the one :class:`~faceward.services.gate.Gate` (rate limit; authorize, a denial
audited with its reason and a plain 403 to the client; the daily quota for searches; the usage
count), then does its use case, then writes one audit entry: if that cannot be written the act
fails, and an enrollment removes the face it stored. Erasure writes its entry first and erases
only once it is written. The console's own acts (:mod:`faceward.services.console`) share the gate.

What the audit keeps: ids, hashes and the operator's stated purpose and case reference.
Never a probe image (only its SHA-256), a name, a consent reference or a template.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from faceward.errors import InvalidInput, NotFound
from faceward.security.apikeys import is_key_id
from faceward.security.permissions import Permission, Role
from faceward.security.policy import Principal
from faceward.services.consent import Consent
from faceward.services.gallery import GalleryService
from faceward.store import TenantRecord
from faceward.store.integrity import IntegrityStore
from faceward.services.ids import SUBJECT_ID, aware, new_id, utcnow, well_formed
from faceward.services.views import (
    AnalysedFace, FaceView, MigrationReport, ReviewableSearch, SearchResult, SubjectView, VerifyResult,
)
from faceward.services.gate import Gate, Limits
from faceward.text import clean_text

if TYPE_CHECKING:
    from faceward.services.accounts import AccountService, KeyView
    from faceward.security.audit import AuditEntry, AuditLog
    from faceward.services.usage import UsageService

log = logging.getLogger(__name__)

class SearchReviewing(Protocol):
    """What review adds to a search in the same pass (:class:`~faceward.services.console.ConsoleActs`)."""

    def annotate(self, principal: Principal, tenant: TenantRecord, search_id: str, result: SearchResult) -> ReviewableSearch: ...


class Operations:
    """The acts of an authenticated key. Every method takes the caller's :class:`Principal` and
    ``source`` (the client address, for the audit log) and raises domain errors only.

    ``gate`` is shared with the console's acts (one bucket per key, one audit path); ``reviewing``
    adds review tokens to a search's result."""

    def __init__(
        self,
        gallery: GalleryService,
        accounts: AccountService,
        audit: AuditLog,
        usage: UsageService,
        *,
        limits: Limits | None = None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        gate: Gate | None = None,
        reviewing: SearchReviewing | None = None,
    ) -> None:
        self.gallery = gallery
        self.accounts = accounts
        self.audit = audit
        self.usage = usage
        self.limits = limits or Limits()
        self.clock = clock
        self.gate = gate or Gate(audit, usage, self.limits, clock=clock, monotonic=monotonic)
        self.bucket = self.gate.bucket  # the ASGI rate gate takes from the same buckets
        self.reviewing = reviewing

    # -- the common steps -----------------------------------------------------------

    def _admit(self, principal: Principal, permission: Permission, act: str, source: str) -> None:
        self.gate.admit(principal, permission, act, source)

    def _audit(self, principal: Principal, action: str, details: dict[str, Any], source: str) -> None:
        self.gate.audit(principal, action, details, source)

    @staticmethod
    def _subject_id(subject_id: str) -> str:
        return well_formed(SUBJECT_ID, subject_id, "subject")

    @staticmethod
    def _same_404(exc: NotFound, what: str) -> NotFound:
        return NotFound(f"no such {what}")

    # -- keys -----------------------------------------------------------------------

    def create_key(
        self, principal: Principal, role: Role, label: str, expires_at: datetime | None, *, source: str
    ) -> tuple[KeyView, str]:
        """A new key for the caller's tenant; the secret is returned once and never stored."""
        self._admit(principal, Permission.KEYS_MANAGE, "key.create", source)
        label = clean_text(label, "a key label", max_len=100)
        if expires_at is not None and aware(expires_at) <= self.clock():
            raise InvalidInput("expires_at must be in the future")
        # AccountService writes the audit entry for key changes itself.
        return self.accounts.create_key(
            principal.tenant_id, role, label, expires_at, actor=principal.actor, source=source
        )

    def list_keys(self, principal: Principal, *, source: str) -> list[KeyView]:
        self._admit(principal, Permission.KEYS_MANAGE, "key.list", source)
        keys = self.accounts.list_keys(principal.tenant_id)
        self._audit(principal, "key.list", {"count": len(keys)}, source)
        return keys

    def revoke_key(self, principal: Principal, key_id: str, *, source: str) -> None:
        self._admit(principal, Permission.KEYS_MANAGE, "key.revoke", source)
        if not isinstance(key_id, str) or not is_key_id(key_id):
            raise NotFound("no such key")
        try:
            self.accounts.revoke_key(principal.tenant_id, key_id, actor=principal.actor, source=source)
        except NotFound as exc:
            raise self._same_404(exc, "key") from None

    # -- subjects -------------------------------------------------------------------

    def create_subject(
        self,
        principal: Principal,
        display_name: str,
        *,
        basis: str,
        reference: str,
        given_at: datetime | None,
        expires_at: datetime | None,
        source: str,
        external_reference: str | None = None,
    ) -> SubjectView:
        """A subject with its consent record; without a valid consent nothing is created (422).

        ``external_reference`` (kept only as a keyed hash) makes the subject findable again
        with :meth:`find_subject`: the CLI's folder name."""
        self._admit(principal, Permission.SUBJECTS_WRITE, "subject.create", source)
        display_name = clean_text(display_name, "a display name", max_len=200)
        consent = Consent.build(basis, clean_text(reference, "a consent reference", max_len=200), given_at, expires_at, now=self.clock())
        view = self.gallery.create_subject(principal.tenant_id, display_name, consent, reference=external_reference)
        try:
            self._audit(principal, "subject.create", {"subject_id": view.id, "consent_basis": consent.basis.value}, source)
        except Exception:
            self._undo_subject(principal.tenant_id, view.id)
            raise
        return view

    def get_subject(self, principal: Principal, subject_id: str, *, source: str) -> SubjectView:
        self._admit(principal, Permission.SUBJECTS_READ, "subject.read", source)
        try:
            view = self.gallery.get_subject(principal.tenant_id, self._subject_id(subject_id))
        except NotFound as exc:
            raise self._same_404(exc, "subject") from None
        self._audit(principal, "subject.read", {"subject_id": view.id}, source)
        return view

    def find_subject(self, principal: Principal, external_reference: str, *, source: str) -> SubjectView | None:
        """The subject created with this external reference, if any (the audit keeps the id found, never the reference)."""
        self._admit(principal, Permission.SUBJECTS_READ, "subject.find", source)
        view = self.gallery.subject_for_ref(principal.tenant_id, external_reference)
        self._audit(principal, "subject.find", {"subject_id": view.id if view else None}, source)
        return view

    def count_subjects(self, principal: Principal, *, source: str) -> int:
        self._admit(principal, Permission.SUBJECTS_READ, "subject.count", source)
        count = self.gallery.store.count_subjects(principal.tenant_id)
        self._audit(principal, "subject.count", {"count": count}, source)
        return count

    def list_subjects(self, principal: Principal, *, limit: int, offset: int, source: str) -> list[SubjectView]:
        self._admit(principal, Permission.SUBJECTS_READ, "subject.list", source)
        views = self.gallery.list_subjects(principal.tenant_id, limit=limit, offset=offset)
        self._audit(principal, "subject.list", {"limit": limit, "offset": offset, "count": len(views)}, source)
        return views

    def erase_subject(self, principal: Principal, subject_id: str, *, source: str) -> list[str]:
        """Erase a subject and every face of it. The audit entry (ids only) is written first;
        nothing is erased unless it was."""
        self._admit(principal, Permission.SUBJECTS_WRITE, "subject.erase", source)
        tenant_id = principal.tenant_id
        subject_id = self._subject_id(subject_id)
        try:
            self.gallery.store.get_subject(tenant_id, subject_id)
            face_ids = [f.id for f in self.gallery.store.faces_of(tenant_id, subject_id)]
        except NotFound as exc:
            raise self._same_404(exc, "subject") from None
        self._audit(principal, "subject.erase", {"subject_id": subject_id, "face_ids": face_ids}, source)
        try:
            return self.gallery.delete_subject(tenant_id, subject_id)
        except NotFound as exc:  # erased by someone else meanwhile: the outcome the caller wanted
            raise self._same_404(exc, "subject") from None
        except Exception:
            try:
                self._audit(principal, "subject.erase_failed", {"subject_id": subject_id}, source)
            except Exception:
                log.exception("could not audit a failed erasure of %s", subject_id)
            raise

    def _undo_subject(self, tenant_id: str, subject_id: str) -> None:
        try:
            self.gallery.delete_subject(tenant_id, subject_id)
        except Exception:
            log.exception("could not remove unaudited subject %s", subject_id)

    # -- faces ----------------------------------------------------------------------

    def enroll(self, principal: Principal, subject_id: str, image: bytes, *, source: str, migrating: bool = False) -> FaceView:
        """Enroll the one face in ``image`` (uploaded bytes; they are hashed, never kept); ``migrating``:
        as :meth:`admit_face`'s, the new model's template of a photo already enrolled (an admin's API reenroll)."""
        act, permission = ("face.migrate", Permission.GALLERY_MIGRATE) if migrating else ("face.enroll", Permission.FACES_WRITE)
        self._admit(principal, permission, act, source)
        try:
            face = (self.gallery.migrate_image if migrating else self.gallery.enroll)(
                principal.tenant_id, self._subject_id(subject_id), image)
        except NotFound as exc:
            raise self._same_404(exc, "subject") from None
        return self._enrolled(principal, face, act, source)

    def admit_face(
        self, principal: Principal, subject_id: str, face: AnalysedFace, *, source: str, migrating: bool = False,
    ) -> FaceView:
        """Enroll a face analysed elsewhere (the CLI's bulk workers): the same gate, audit and count as :meth:`enroll`.

        ``migrating`` stores it as the new model's template of an image the subject already has
        (``faceward reenroll``), audited as ``face.migrate``."""
        act, permission = ("face.migrate", Permission.GALLERY_MIGRATE) if migrating else ("face.enroll", Permission.FACES_WRITE)
        self._admit(principal, permission, act, source)
        subject_id = self._subject_id(subject_id)
        admit = self.gallery.admit_migrated if migrating else self.gallery.admit
        try:
            view = admit(principal.tenant_id, subject_id, face.descriptor, face.quality, face.box, face.image_sha256,
                         face.faces_in_image)
        except NotFound as exc:
            raise self._same_404(exc, "subject") from None
        return self._enrolled(principal, view, act, source)

    def _enrolled(self, principal: Principal, face: FaceView, act: str, source: str) -> FaceView:
        details = {"subject_id": face.subject_id, "face_id": face.id, "image_sha256": face.image_sha256, "duplicate": face.duplicate}
        try:
            self._audit(principal, act, details, source)
        except Exception:
            if not face.duplicate:
                self._discard_face(principal.tenant_id, face.id)
            raise
        return face

    # -- model migration (faceward reenroll) ----------------------------------------

    def begin_migration(self, principal: Principal, *, source: str) -> str:
        """Start or resume moving the gallery to the engine's model; returns the gallery's current model."""
        self._admit(principal, Permission.GALLERY_MIGRATE, "gallery.migrate", source)
        current = self.gallery.begin_migration(principal.tenant_id)
        self._audit(principal, "gallery.migrate", {"from": current, "to": self.gallery.model_id}, source)
        return current

    def finish_migration(self, principal: Principal, *, require_all: bool, source: str) -> MigrationReport:
        self._admit(principal, Permission.GALLERY_MIGRATE, "gallery.switch", source)
        report = self.gallery.finish_migration(principal.tenant_id, require_all=require_all)
        self._audit(principal, "gallery.switch", {
            "from": report.old_model_id, "to": report.new_model_id, "switched": report.switched,
            "faces_migrated": report.faces_migrated, "old_faces_removed": report.old_faces_removed,
        }, source)
        return report

    def _discard_face(self, tenant_id: str, face_id: str) -> None:
        """Remove a face whose enrollment could not be audited, from the store and the index."""
        try:
            IntegrityStore(self.gallery.store).delete_faces(tenant_id, [face_id])
        except Exception:
            log.exception("could not remove unaudited face %s", face_id)
        # The in-memory index follows additions by sequence; rebuild it rather than trust it.
        self.gallery.indexes.drop_tenant(tenant_id)

    # -- search and verify ----------------------------------------------------------

    def search(
        self, principal: Principal, image: bytes, *, purpose: str, case_reference: str, k: int = 10, source: str,
        face: int | None = None, search_id: str | None = None,
    ) -> ReviewableSearch:
        """1:N search. ``purpose`` and ``case_reference`` are required and audited with the probe's
        SHA-256 and the candidates' ids; the probe itself is never stored. ``face`` picks a face of the
        probe (0 = largest; default its subject, the most prominent face); the search id (new unless given) is audited to tie reviews to it."""
        self.gate.check(principal, Permission.SEARCH, "search", source)
        tenant_id, store = principal.tenant_id, self.gallery.store
        search_id = search_id or new_id("q_")
        try:  # the analysis runs before the act's unit of work, which it would hold open
            purpose = clean_text(purpose, "a purpose")
            case_reference = clean_text(case_reference, "a case reference")
            tenant = self.tenant(principal)
            probe = self.gallery.matching.probe(tenant, image, k=k, face=face)
        except Exception:
            self.gate.quota(principal)  # a refused search still counts against the quota
            raise
        self.gate.quota(principal)  # its own transaction: a search over the quota is counted, then refused
        with store.unit_of_work(tenant_id, known=principal.tenant):
            result = self.gallery.matching.match(tenant_id, probe, k=k)
            self._search_audit(principal, result, purpose, case_reference, k, face, search_id, source)
        if self.reviewing is None:
            return ReviewableSearch(result, search_id)
        return self.reviewing.annotate(principal, tenant, search_id, result)

    def tenant(self, principal: Principal) -> TenantRecord:
        """The caller's tenant, active: as authentication read it, else from the store."""
        if principal.tenant is not None and principal.tenant.wrapped_key is not None and principal.tenant.status == "active":
            return principal.tenant
        return self.gallery.active_tenant(principal.tenant_id)

    def _search_audit(
        self, principal: Principal, result: SearchResult, purpose: str, case_reference: str, k: int,
        face: int | None, search_id: str | None, source: str,
    ) -> None:
        details: dict[str, Any] = {
            "purpose": purpose, "case_reference": case_reference, "probe_sha256": result.probe_sha256, "k": k,
            "gallery_faces": result.gallery_size, "candidates": [c.subject_id for c in result.candidates],
        }
        if search_id is not None:
            details["search_id"] = search_id
        if face is not None:
            details["face"] = face
        self._audit(principal, "search", details, source)

    def verify_images(
        self, principal: Principal, image_a: bytes, image_b: bytes, *, source: str,
        face_a: int | None = None, face_b: int | None = None,
    ) -> VerifyResult:
        self._admit(principal, Permission.VERIFY, "verify", source)
        result = self.gallery.verify_images(principal.tenant_id, image_a, image_b, face_a=face_a, face_b=face_b)
        details: dict[str, Any] = {
            "mode": "images", "image_sha256": [_sha256(image_a), _sha256(image_b)], "decision": result.decision.value,
        }
        if face_a is not None or face_b is not None:
            details["face"] = [face_a, face_b]
        self._audit(principal, "verify", details, source)
        return result

    def verify_subject(
        self, principal: Principal, image: bytes, subject_id: str, *, source: str, face: int | None = None
    ) -> VerifyResult:
        self._admit(principal, Permission.VERIFY, "verify", source)
        try:
            result = self.gallery.verify_subject(principal.tenant_id, image, self._subject_id(subject_id), face=face)
        except NotFound as exc:
            raise self._same_404(exc, "subject") from None
        details: dict[str, Any] = {
            "mode": "subject", "subject_id": subject_id, "image_sha256": [_sha256(image)], "decision": result.decision.value,
        }
        if face is not None:
            details["face"] = face
        self._audit(principal, "verify", details, source)
        return result

    # -- oversight ------------------------------------------------------------------

    def usage_summary(self, principal: Principal, *, source: str) -> dict[str, Any]:
        self._admit(principal, Permission.USAGE_READ, "usage.read", source)
        summary = self.usage.summary(principal.tenant_id)
        self._audit(principal, "usage.read", {}, source)
        return summary

    def audit_entries(
        self,
        principal: Principal,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 100,
        offset: int = 0,
        newest_first: bool = False,
        source: str,
    ) -> list[AuditEntry]:
        """The tenant's audit log, oldest first (``newest_first`` reverses it). Reading it is itself audited."""
        self._admit(principal, Permission.AUDIT_READ, "audit.read", source)
        entries = self.audit.entries(
            principal.tenant_id, since=since, until=until, actor=actor, action=action, limit=limit, offset=offset,
            newest_first=newest_first,
        )
        filters = {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None,
                   "actor": actor, "action": action, "limit": limit, "offset": offset}
        self._audit(principal, "audit.read", {k: v for k, v in filters.items() if v is not None}, source)
        return list(entries)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


__all__ = ["AnalysedFace", "Limits", "Operations", "SearchReviewing"]
