"""Human review of search candidates: "possible match", "not a match", and "confirmed" by a second reviewer.

A search's candidates are leads. An examiner records a *step* on one candidate (one
subject returned by one search), always with a note saying why:

* ``possible_match`` or ``not_a_match`` - any reviewer, at any time;
* ``confirmed`` - only while the candidate's latest step is ``possible_match`` recorded by
  **another key**: a confirmation is two different people agreeing (a person signed in through the
  tenant's provider reviews under their person id, so two sessions of one person are one reviewer)
  (:class:`SecondReviewerRequired`, 409, otherwise).

A candidate's status is its latest step's outcome; the steps themselves are
append-only. Each step names the search (the ``search_id`` of the search's audit
entry), the subject and the face that matched, and carries a review token: an HMAC,
under a key derived from the tenant's, that the search handed out with the candidate.
A step whose token does not match is refused as an unknown candidate, so reviews can
only be recorded about what a search really returned. Notes are sealed with the
subject's key: erasing the subject erases its reviews (the audit log keeps the ids).

What a step says (search, subject, face, reviewer key, outcome) is sealed under the tenant
key; the store finds steps by keyed hashes of the candidate, the search and the subject
(#12). Steps stored in clear before that are sealed by :meth:`ReviewService.seal_clear_steps`.
"""

from __future__ import annotations

import hmac
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import Connection

from faceward.errors import FacewardError, InvalidInput, NotFound
from faceward.security.errors import SealError
from faceward.security.vault import ReviewStepFacts
from faceward.services.gallery import GalleryService
from faceward.services.ids import FACE_ID, SEARCH_ID, SUBJECT_ID
from faceward.store.accounts import utc
from faceward.store.reviews import ReviewRecord, ReviewStore

log = logging.getLogger(__name__)

NOTE_MAX = 2000
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


@dataclass(frozen=True)
class PreparedStep:
    """A checked step with its sealed record, not stored yet (:meth:`ReviewService.save`)."""

    record: ReviewRecord
    facts: ReviewStepFacts

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def search_id(self) -> str:
        return self.facts.search_id

    @property
    def subject_id(self) -> str:
        return self.facts.subject_id

    @property
    def face_id(self) -> str | None:
        return self.facts.face_id

    @property
    def outcome(self) -> str:
        return self.facts.outcome


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
    ) -> PreparedStep:
        """Check one step against the rule and seal it and its note; nothing is stored yet (see :meth:`save`).

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
        vault = self.gallery.vault
        if chosen is Outcome.CONFIRMED:
            steps = self._steps(tenant_id, search_id, subject_id)
            last = self._facts(tenant_id, steps[-1]) if steps else None
            if last is None or last.outcome != Outcome.POSSIBLE_MATCH.value:
                raise SecondReviewerRequired(
                    "only a candidate another reviewer marked a possible match can be confirmed"
                )
            if last.reviewer_key_id == reviewer_key_id:
                raise SecondReviewerRequired(
                    "a second reviewer must confirm: this key or person marked the possible match, "
                    "so another key or person has to agree"
                )
        review_id = "r_" + uuid.uuid4().hex[:28]
        facts = ReviewStepFacts(search_id, subject_id, face_id, reviewer_key_id, chosen.value)
        return PreparedStep(self._sealed(tenant_id, review_id, facts, vault.seal_review_note(subject, review_id, note),
                                         utc(self.clock())), facts)

    def _sealed(self, tenant_id: str, review_id: str, facts: ReviewStepFacts, note_sealed: bytes, at: datetime) -> ReviewRecord:
        vault = self.gallery.vault
        refs = vault.review_refs(tenant_id, facts.search_id, facts.subject_id)
        return ReviewRecord(
            id=review_id, tenant_id=tenant_id, candidate_ref=refs.candidate, search_ref=refs.search, subject_ref=refs.subject,
            step_sealed=vault.seal_review_step(tenant_id, review_id, facts), note_sealed=note_sealed, created_at=at,
        )

    def _steps(self, tenant_id: str, search_id: str, subject_id: str) -> list[ReviewRecord]:
        ref = self.gallery.vault.review_refs(tenant_id, search_id, subject_id).candidate
        return self._repo.reviews(tenant_id, candidate=(ref, search_id, subject_id))

    def _facts(self, tenant_id: str, record: ReviewRecord) -> ReviewStepFacts:
        if record.step_sealed is not None:
            return self.gallery.vault.open_review_step(tenant_id, record.id, record.step_sealed)
        # stored in clear before revision 0006 and not sealed yet
        return ReviewStepFacts(str(record.search_id), str(record.subject_id), record.face_id, str(record.reviewer_key_id),
                               str(record.outcome))

    def save(self, step: PreparedStep, *, conn: Connection | None = None) -> None:
        """Store a prepared step (with ``conn``, in the caller's transaction, beside its audit entry)."""
        self._repo.add_review(step.record, conn=conn)

    def seal_clear_steps(self, tenant_id: str) -> int:
        """Seal the tenant's steps stored in clear before revision 0006; returns how many (0 when none are left).

        Each clear row is replaced by its sealed form (same id, time and note) in batches; run again
        after an interruption, it finishes the rest.
        """
        done = 0
        while batch := self._repo.clear_steps(tenant_id):
            self._repo.replace_steps(tenant_id, [
                self._sealed(tenant_id, r.id, self._facts(tenant_id, r), r.note_sealed, r.created_at) for r in batch
            ])
            done += len(batch)
        return done

    def seal_pending(self) -> int:
        """Seal every tenant's steps that revision 0006 left in clear, if it left any; returns how many.

        One query when there is nothing to do (every start). A tenant whose key does not open is left
        for ``faceward doctor`` to report, and the pass runs again at the next start.
        """
        if not self._repo.clear_steps_pending():
            return 0
        done, complete = 0, True
        for tenant in self.gallery.store.list_tenants():
            if tenant.wrapped_key is None:
                continue
            try:
                done += self.seal_clear_steps(tenant.id)
            except SealError:
                complete = False
                log.warning("review steps of a tenant stay in clear: its key does not open (see faceward doctor)")
        if complete:
            self._repo.clear_steps_sealed()
        return done

    def steps_of_erased(self, tenant_id: str, subject_ids: list[str]) -> int:
        """How many steps remain of these (erased) subjects: none, unless they were erased without a key open."""
        refs = [self.gallery.vault.review_subject_ref(tenant_id, s) for s in subject_ids]
        return self._repo.count_steps_of(tenant_id, refs) if refs else 0

    def forget_erased(self, tenant_id: str, subject_ids: list[str]) -> int:
        """Delete the steps of subjects erased where no key was open (a restore re-erasing from the ledger).

        An erasure through the service deletes its subject's steps itself (they no longer name the
        subject, so the foreign key's cascade cannot); a restore erases from the ledger before any key
        is open, and ``faceward restore`` then calls this. Returns how many steps went.
        """
        refs = [self.gallery.vault.review_subject_ref(tenant_id, s) for s in subject_ids]
        return self._repo.delete_steps_of(tenant_id, refs) if refs else 0

    def clear_step_count(self, tenant_id: str) -> int:
        """How many of the tenant's steps are still in clear (``faceward doctor`` reports them)."""
        return len(self._repo.clear_steps(tenant_id, limit=1_000_000))

    def candidate(self, tenant_id: str, search_id: str, subject_id: str) -> CandidateReview:
        """One reviewed candidate with all its steps; :class:`NotFound` when it has none (or was erased)."""
        found = self._group(tenant_id, self._steps(tenant_id, search_id, subject_id))
        if not found:
            raise NotFound("no such candidate")
        return found[0]

    def record(self, tenant_id: str, reviewer_key_id: str, **step: Any) -> CandidateReview:
        """:meth:`prepare` and :meth:`save` in one go (no audit entry: :mod:`faceward.services.console` writes one)."""
        record = self.prepare(tenant_id, reviewer_key_id, **step)
        self.save(record)
        return self.candidate(tenant_id, record.search_id, record.subject_id)

    def candidates(
        self, tenant_id: str, *, search_id: str | None = None, status: Outcome | None = None, limit: int = 100
    ) -> list[CandidateReview]:
        """Reviewed candidates, the most recently reviewed first; ``status`` keeps those whose latest step has it."""
        if search_id is not None and not SEARCH_ID.fullmatch(search_id):
            return []
        search = None if search_id is None else (self.gallery.vault.review_search_ref(tenant_id, search_id), search_id)
        found = self._group(tenant_id, self._repo.reviews(tenant_id, search=search, limit=5000))
        if status is not None:
            found = [c for c in found if c.status is status]
        return found[:limit]

    def _group(self, tenant_id: str, records: list[ReviewRecord]) -> list[CandidateReview]:
        by_candidate: dict[tuple[str, str], list[tuple[ReviewRecord, ReviewStepFacts]]] = {}
        for record in sorted(records, key=lambda r: r.created_at):
            facts = self._facts(tenant_id, record)
            by_candidate.setdefault((facts.search_id, facts.subject_id), []).append((record, facts))
        subjects = self.gallery.store.subjects_by_id(tenant_id, sorted({s for _, s in by_candidate}))
        out = []
        vault = self.gallery.vault
        for (search_id, subject_id), steps in by_candidate.items():
            subject = subjects.get(subject_id)
            if subject is None:  # erased meanwhile
                continue
            name = vault.open_subject_name(subject, subject.display_name_sealed)
            face_id = steps[-1][1].face_id
            out.append(CandidateReview(
                search_id, subject_id, face_id, name, self.token(tenant_id, search_id, subject_id, face_id),
                [ReviewStep(r.id, f.reviewer_key_id, Outcome(f.outcome),
                            vault.open_review_note(subject, r.id, r.note_sealed), r.created_at)
                 for r, f in steps],
            ))
        return sorted(out, key=lambda c: c.steps[-1].at, reverse=True)


__all__ = ["CandidateReview", "Outcome", "PreparedStep", "ReviewService", "ReviewStep", "SecondReviewerRequired"]
