"""The acts the web console adds beside :class:`~faceward.services.operations.Operations` (#6).

:class:`ConsoleActs` is composed with the same :class:`~faceward.services.gate.Gate` as every
other act (rate limit, authorize, count, act, audit), not derived from ``Operations``:

* ``detect`` - the faces in a photo, boxed, with their quality verdict; nothing stored or
  matched (searchers check a probe, enrollers a photo before saving it);
* ``annotate`` - what review adds to a search in the same pass (``Operations.search`` calls it):
  for each candidate the token a review of it must carry, and whether thumbnails may be shown;
* ``record_review`` / ``reviews`` - :mod:`faceward.services.reviews`; a step and its audit
  entry commit in one transaction;
* ``thumbnail`` - an enrolled face's chip, for reviewers only (:mod:`faceward.services.thumbnails`);
* ``tenant_settings`` / ``update_tenant_settings`` - the tenant's own switches (thumbnails);
* ``verify_audit`` - the audit chain check, for the console's status line;
* ``sign_in`` / ``sign_out`` - console sessions (:mod:`faceward.services.sessions`).

The audit keeps ids only: never a review note, a thumbnail or a name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from faceward.errors import NotFound
from faceward.scoring import model_card
from faceward.security.permissions import Permission
from faceward.security.policy import Principal, allowed
from faceward.services.gallery import GalleryService
from faceward.services.gate import Gate
from faceward.services.ids import FACE_ID
from faceward.services.views import ReviewableSearch, SearchResult
from faceward.store import TenantRecord
from faceward.security.ratelimit import key_rate_limited
from faceward.services.reviews import CandidateReview, Outcome, ReviewService
from faceward.services.sessions import ConsoleSessions, Session
from faceward.services.thumbnails import Thumbnails, enabled
from faceward.vision import AmbiguousSubject, QualityLimits, dominant_face, refusals, subject_face
from faceward.vision.types import Face

if TYPE_CHECKING:
    from faceward.services.accounts import AccountService
    from faceward.security.audit import AuditLog, AuditReport


@dataclass(frozen=True)
class Detection:
    """What :meth:`ConsoleActs.detect` found: boxes in the upright image's pixels, largest face first."""

    width: int
    height: int
    faces: list[Face]
    limits: QualityLimits
    image_sha256: str

    @property
    def subject(self) -> int | None:
        """Index of the face enrollment would take (the only one, or the clearly dominant one); None if ambiguous."""
        if not self.faces:
            return None
        try:
            return dominant_face([f.box for f in self.faces], (self.width, self.height))
        except AmbiguousSubject:
            return None

    @property
    def searched(self) -> int | None:
        """Index of the face a search or verification takes by default: the photo's subject (most prominent)."""
        return subject_face([f.box for f in self.faces], (self.width, self.height)) if self.faces else None

    @property
    def enrollable(self) -> bool:
        index = self.subject
        return index is not None and not refusals(self.faces[index].quality, self.limits)

    @property
    def verdict(self) -> str:
        if not self.faces:
            return "no face was found"
        index = self.subject
        if index is None:
            try:
                dominant_face([f.box for f in self.faces], (self.width, self.height))
            except AmbiguousSubject as exc:
                return exc.reasons[0]
        assert index is not None
        problems = refusals(self.faces[index].quality, self.limits)
        others = len(self.faces) - 1
        where = f" (face {index + 1}; {others} bystander{'s' if others > 1 else ''} not enrolled)" if others else ""
        return ("ready to enroll" + where) if not problems else "refused: " + "; ".join(problems)

    def as_dict(self) -> dict[str, Any]:
        return {
            "width": self.width, "height": self.height, "image_sha256": self.image_sha256,
            "faces": [
                {**face.summary(), "index": i, "refusals": refusals(face.quality, self.limits)}
                for i, face in enumerate(self.faces)
            ],
            "enrollable": self.enrollable, "verdict": self.verdict, "subject": self.subject,
            "searched": self.searched,
        }


class ConsoleActs:
    """The console's acts, through ``gate`` (the one every act passes). ``reviews``, ``thumbnails``
    and ``sessions`` are built from the gallery and accounts when not given."""

    def __init__(
        self,
        gallery: GalleryService,
        accounts: AccountService,
        audit: AuditLog,
        gate: Gate,
        *,
        reviews: ReviewService | None = None,
        thumbnails: Thumbnails | None = None,
        sessions: ConsoleSessions | None = None,
    ) -> None:
        self.gallery = gallery
        self.audit = audit
        self.gate = gate
        self.reviews = reviews or ReviewService(gallery)
        self.thumbnails = thumbnails or Thumbnails(gallery)
        self.sessions = sessions or ConsoleSessions(accounts)

    def _admit(self, principal: Principal, permission: Permission, act: str, source: str) -> None:
        self.gate.admit(principal, permission, act, source)

    def _audit(self, principal: Principal, action: str, details: dict[str, Any], source: str) -> None:
        self.gate.audit(principal, action, details, source)

    # -- detection and search -------------------------------------------------------

    def detect(self, principal: Principal, image: bytes, *, source: str) -> Detection:
        """The faces in ``image`` with boxes and quality; the image is hashed for the audit log, never kept."""
        self._admit(principal, Permission.DETECT, "detect", source)
        faces, (width, height), digest = self.gallery.detect(principal.tenant_id, image)
        self._audit(principal, "detect", {"image_sha256": digest, "faces": len(faces)}, source)
        return Detection(width, height, faces, self.gallery.limits, digest)

    def annotate(self, principal: Principal, tenant: TenantRecord, search_id: str, result: SearchResult) -> ReviewableSearch:
        """A search's result with its id, each candidate's review token (for keys that may review) and
        whether thumbnails may be shown: computed in the search's own pass, nothing read again."""
        tokens = {}
        if allowed(principal, Permission.REVIEW_WRITE):
            tokens = {c.subject_id: self.reviews.token(tenant.id, search_id, c.subject_id, c.face_id) for c in result.candidates}
        thumbnails = allowed(principal, Permission.REVIEW_READ) and enabled(tenant)
        return ReviewableSearch(result, search_id, tokens, thumbnails)

    # -- reviews --------------------------------------------------------------------

    def record_review(
        self,
        principal: Principal,
        *,
        search_id: str,
        subject_id: str,
        face_id: str | None,
        token: str,
        outcome: str,
        note: str,
        source: str,
    ) -> CandidateReview:
        """One review step on a candidate; the step and its audit entry (ids and outcome, not the note) commit together."""
        self._admit(principal, Permission.REVIEW_WRITE, "review", source)
        tenant_id = principal.tenant_id
        record = self.reviews.prepare(
            tenant_id, principal.key_id, search_id=search_id, subject_id=subject_id, face_id=face_id, token=token,
            outcome=outcome, note=note,
        )
        details = {"review_id": record.id, "search_id": record.search_id, "subject_id": record.subject_id,
                   "face_id": record.face_id, "outcome": record.outcome}
        with self.gallery.store.transaction(tenant_id) as conn:
            self.reviews.save(record, conn=conn)
            self.audit.append(tenant_id, actor=principal.actor, action="review", details=details, source=source, conn=conn)
        return self.reviews.candidate(tenant_id, record.search_id, record.subject_id)

    def list_reviews(
        self, principal: Principal, *, search_id: str | None = None, status: Outcome | None = None, limit: int = 100,
        source: str,
    ) -> list[CandidateReview]:
        self._admit(principal, Permission.REVIEW_READ, "review.list", source)
        found = self.reviews.candidates(principal.tenant_id, search_id=search_id, status=status, limit=limit)
        filters = {"search_id": search_id, "status": status.value if status else None, "count": len(found)}
        self._audit(principal, "review.list", {k: v for k, v in filters.items() if v is not None}, source)
        return found

    def thumbnail(self, principal: Principal, face_id: str, *, source: str) -> bytes:
        """An enrolled face's thumbnail (JPEG). Every view is audited with the face id."""
        self._admit(principal, Permission.REVIEW_READ, "face.thumbnail", source)
        if not isinstance(face_id, str) or not FACE_ID.fullmatch(face_id):
            raise NotFound("no thumbnail for this face")
        jpeg = self.thumbnails.read(principal.tenant_id, face_id)
        self._audit(principal, "face.thumbnail", {"face_id": face_id}, source)
        return jpeg

    # -- the tenant's settings and audit chain ------------------------------------------

    def tenant_settings(self, principal: Principal, *, source: str) -> dict[str, Any]:
        self._admit(principal, Permission.SETTINGS_MANAGE, "settings.read", source)
        settings = self._settings(principal.tenant_id)
        self._audit(principal, "settings.read", {}, source)
        return settings

    def _settings(self, tenant_id: str) -> dict[str, Any]:
        """Thumbnails on or off, and the recognizer on record: its provenance, calibration and the gallery's model."""
        engine = self.gallery.engine
        model = model_card(engine.template_id, engine.provenance, engine.manifest)
        held = self.gallery.store.get_tenant(tenant_id).settings
        return {**self.thumbnails.settings(tenant_id), "model": {
            **model, "gallery_model_id": self.gallery.gallery_model(tenant_id),
            "gallery_model_sha256": held.get("model_sha256") if held.get("model_id") else None,
        }}

    def update_tenant_settings(self, principal: Principal, *, thumbnails: bool, source: str) -> dict[str, Any]:
        """Turn thumbnails on or off (off deletes every stored one at once); audited with the count deleted."""
        self._admit(principal, Permission.SETTINGS_MANAGE, "settings.update", source)
        deleted = self.thumbnails.set_enabled(principal.tenant_id, thumbnails)
        self._audit(principal, "settings.update", {"thumbnails": thumbnails, "thumbnails_deleted": deleted}, source)
        return {**self._settings(principal.tenant_id), "thumbnails_deleted": deleted}

    def verify_audit(self, principal: Principal, *, source: str) -> AuditReport:
        """Walk the tenant's audit chain (before this act's own entry is added)."""
        self._admit(principal, Permission.AUDIT_READ, "audit.verify", source)
        report = self.audit.verify(principal.tenant_id)
        self._audit(principal, "audit.verify", {"ok": report.ok, "entries": report.entries}, source)
        return report

    # -- console sessions -----------------------------------------------------------

    def sign_in(self, token: str, *, source: str) -> Session:
        """Exchange an API key for a console session (any role may sign in; its pages follow the role)."""
        session = self.sessions.start(token, source=source)
        principal = session.principal
        wait = self.gate.bucket.take(principal.key_id)
        if wait > 0:
            self.sessions.end(session.cookie)
            raise key_rate_limited(wait)
        try:
            self._audit(principal, "console.sign_in", {"session": _session_ref(session.cookie)}, source)
        except Exception:
            self.sessions.end(session.cookie)
            raise
        return session

    def sign_out(self, principal: Principal, cookie: str, *, source: str) -> None:
        self.sessions.end(cookie)
        self._audit(principal, "console.sign_out", {"session": _session_ref(cookie)}, source)


def _session_ref(cookie: str) -> str:
    """A short, non-secret name for a session in the audit log (a hash prefix of the cookie's secret hash)."""
    secret = cookie.rsplit(".", 1)[-1]
    return hashlib.sha256(hashlib.sha256(secret.encode()).hexdigest().encode()).hexdigest()[:12]


__all__ = ["ConsoleActs", "Detection"]
