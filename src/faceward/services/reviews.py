"""Human review of search candidates: "possible match", "not a match", and "confirmed" by a second reviewer.

A search's candidates are leads. An examiner records a *step* on one candidate (one
subject returned by one search), always with a note saying why:

* ``possible_match`` or ``not_a_match`` - any reviewer, at any time;
* ``confirmed`` - only while the candidate's latest step is ``possible_match`` recorded by
  **another key**: a confirmation is two different people agreeing
  (:class:`SecondReviewerRequired`, 409, otherwise).

A candidate's status is its latest step's outcome; the steps themselves are
append-only. Each step names the search (the ``search_id`` of the search's audit
entry), the subject and the face that matched, and carries a review token: an HMAC,
under a key derived from the tenant's, that the search handed out with the candidate.
A step whose token does not match is refused as an unknown candidate, so reviews can
only be recorded about what a search really returned. Notes are sealed with the
subject's key: erasing the subject erases its reviews (the audit log keeps the ids).
"""

from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import Connection

from faceward.errors import FacewardError, InvalidInput, NotFound
from faceward.services.gallery import GalleryService
from faceward.store.accounts import utc
from faceward.store.reviews import ReviewRecord, ReviewStore

NOTE_MAX = 2000
SEARCH_ID = re.compile(r"q_[0-9a-f]{28}")
SUBJECT_ID = re.compile(r"s_[0-9a-f]{28}")
FACE_ID = re.compile(r"f_[0-9a-f]{28}")
TOKEN = re.compile(r"[0-9a-f]{64}")


class Outcome(str, Enum):
    POSSIBLE_MATCH = "possible_match"
    NOT_A_MATCH = "not_a_match"
    CONFIRMED = "confirmed"


class SecondReviewerRequired(FacewardError):
    """A confirmation without another key's standing "possible match"."""

    code = "second_reviewer_required"
    status = 409


@dataclass(frozen=True)
class ReviewStep:
    id: str
    reviewer_key_id: str
    outcome: Outcome
    note: str
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "reviewer_key_id": self.reviewer_key_id, "outcome": self.outcome.value,
                "note": self.note, "at": self.at}


@dataclass(frozen=True)
class CandidateReview:
    """One candidate of one search and every step recorded on it, oldest first."""

    search_id: str
    subject_id: str
    face_id: str | None
    display_name: str
    review_token: str
    steps: list[ReviewStep] = field(default_factory=list)

    @property
    def status(self) -> Outcome:
        return self.steps[-1].outcome

    @property
    def reviewers(self) -> list[str]:
        return sorted({s.reviewer_key_id for s in self.steps})

    def as_dict(self) -> dict[str, Any]:
        return {
            "search_id": self.search_id, "subject_id": self.subject_id, "face_id": self.face_id,
            "display_name": self.display_name, "review_token": self.review_token, "status": self.status.value,
            "reviewers": self.reviewers, "steps": [s.as_dict() for s in self.steps],
        }


def clean_note(note: str) -> str:
    note = (note or "").strip()
    if not note:
        raise InvalidInput("a review needs a note saying why", code="note_required")
    if len(note) > NOTE_MAX:
        raise InvalidInput(f"a review note has at most {NOTE_MAX} characters")
    if any((ord(c) < 32 and c not in "\n\t") or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF for c in note):
        raise InvalidInput("a review note cannot contain control characters")
    return note


class ReviewService:
    def __init__(self, gallery: GalleryService, *, clock: Callable[[], datetime] | None = None) -> None:
        self.gallery = gallery
        self.clock = clock or gallery.clock
        self._repo = ReviewStore(gallery.store)

    # -- tokens -------------------------------------------------------------------------

    def token(self, tenant_id: str, search_id: str, subject_id: str, face_id: str | None) -> str:
        """The review token of a candidate: handed out with the search result, required by :meth:`record`."""
        message = "|".join(("candidate", search_id, subject_id, face_id or "")).encode()
        return self.gallery.vault.review_token(tenant_id, message)

    # -- acts ---------------------------------------------------------------------------

    def prepare(
        self,
        tenant_id: str,
        reviewer_key_id: str,
        *,
        search_id: str,
        subject_id: str,
        face_id: str | None,
        token: str,
        outcome: str,
        note: str,
    ) -> ReviewRecord:
        """Check one step against the rule and seal its note; nothing is stored yet (see :meth:`save`).

        :class:`NotFound` for a candidate no search returned (or an erased subject),
        :class:`SecondReviewerRequired` for a confirmation the rule refuses, 422 for a bad outcome or note.
        """
        well_formed = (
            isinstance(search_id, str) and SEARCH_ID.fullmatch(search_id)
            and isinstance(subject_id, str) and SUBJECT_ID.fullmatch(subject_id)
            and (face_id is None or (isinstance(face_id, str) and FACE_ID.fullmatch(face_id)))
            and isinstance(token, str) and TOKEN.fullmatch(token)
        )
        if not well_formed or not hmac.compare_digest(token, self.token(tenant_id, search_id, subject_id, face_id)):
            raise NotFound("no such candidate")
        try:
            chosen = Outcome(outcome)
        except ValueError:
            raise InvalidInput(f"outcome must be one of {', '.join(o.value for o in Outcome)}") from None
        note = clean_note(note)
        subject = self.gallery.store.get_subject(tenant_id, subject_id)  # NotFound once erased
        if chosen is Outcome.CONFIRMED:
            steps = self._repo.reviews(tenant_id, search_id=search_id, subject_id=subject_id)
            last = steps[-1] if steps else None
            if last is None or last.outcome != Outcome.POSSIBLE_MATCH.value:
                raise SecondReviewerRequired(
                    "only a candidate another reviewer marked a possible match can be confirmed"
                )
            if last.reviewer_key_id == reviewer_key_id:
                raise SecondReviewerRequired(
                    "a second reviewer must confirm: this key marked the possible match, so another key has to agree"
                )
        review_id = "r_" + uuid.uuid4().hex[:28]
        return ReviewRecord(
            id=review_id, tenant_id=tenant_id, search_id=search_id, subject_id=subject_id, face_id=face_id,
            reviewer_key_id=reviewer_key_id, outcome=chosen.value,
            note_sealed=self.gallery.vault.seal_review_note(subject, review_id, note),
            created_at=utc(self.clock()),
        )

    def save(self, record: ReviewRecord, *, conn: Connection | None = None) -> None:
        """Store a prepared step (with ``conn``, in the caller's transaction, beside its audit entry)."""
        self._repo.add_review(record, conn=conn)

    def candidate(self, tenant_id: str, search_id: str, subject_id: str) -> CandidateReview:
        """One reviewed candidate with all its steps; :class:`NotFound` when it has none (or was erased)."""
        found = self._group(tenant_id, self._repo.reviews(tenant_id, search_id=search_id, subject_id=subject_id))
        if not found:
            raise NotFound("no such candidate")
        return found[0]

    def record(self, tenant_id: str, reviewer_key_id: str, **step: Any) -> CandidateReview:
        """:meth:`prepare` and :meth:`save` in one go (no audit entry: :mod:`faceward.services.review_operations` writes one)."""
        record = self.prepare(tenant_id, reviewer_key_id, **step)
        self.save(record)
        return self.candidate(tenant_id, record.search_id, record.subject_id)

    def candidates(
        self, tenant_id: str, *, search_id: str | None = None, status: Outcome | None = None, limit: int = 100
    ) -> list[CandidateReview]:
        """Reviewed candidates, the most recently reviewed first; ``status`` keeps those whose latest step has it."""
        if search_id is not None and not SEARCH_ID.fullmatch(search_id):
            return []
        found = self._group(tenant_id, self._repo.reviews(tenant_id, search_id=search_id, limit=5000))
        if status is not None:
            found = [c for c in found if c.status is status]
        return found[:limit]

    def _group(self, tenant_id: str, records: list[ReviewRecord]) -> list[CandidateReview]:
        by_candidate: dict[tuple[str, str], list[ReviewRecord]] = {}
        for record in sorted(records, key=lambda r: r.created_at):
            by_candidate.setdefault((record.search_id, record.subject_id), []).append(record)
        subjects = self.gallery.store.subjects_by_id(tenant_id, sorted({s for _, s in by_candidate}))
        out = []
        for (search_id, subject_id), steps in by_candidate.items():
            subject = subjects.get(subject_id)
            if subject is None:  # erased meanwhile
                continue
            vault = self.gallery.vault
            name = vault.open_subject_name(subject, subject.display_name_sealed)
            face_id = steps[-1].face_id
            out.append(CandidateReview(
                search_id, subject_id, face_id, name, self.token(tenant_id, search_id, subject_id, face_id),
                [ReviewStep(r.id, r.reviewer_key_id, Outcome(r.outcome),
                            vault.open_review_note(subject, r.id, r.note_sealed), r.created_at)
                 for r in steps],
            ))
        return sorted(out, key=lambda c: c.steps[-1].at, reverse=True)


__all__ = ["CandidateReview", "Outcome", "ReviewService", "ReviewStep", "SecondReviewerRequired"]
