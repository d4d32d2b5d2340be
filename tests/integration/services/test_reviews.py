"""Reviews, thumbnails and console sessions at the service level, on SQLite and PostgreSQL (no HTTP, no engine).

The rule of :mod:`faceward.services.reviews`, the sealing of notes and thumbnails under the
subject's key, and the lifetimes of :mod:`faceward.services.sessions`, driven by a settable clock.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text, update

from faceward.errors import InvalidInput, NotFound
from faceward.security.crypto import Keyring
from faceward.security.errors import SealError, Unauthenticated
from faceward.security.permissions import Role
from faceward.services.accounts import AccountService
from faceward.security.audit import AuditLog
from faceward.services.consent import Consent, LawfulBasis
from faceward.services.gallery import GalleryService, new_id
from faceward.services.reviews import Outcome, ReviewService, SecondReviewerRequired
from faceward.services.sessions import IDLE, LIFETIME, ConsoleSessions, csrf_token
from faceward.services.thumbnails import Thumbnails, ThumbnailsOff
from faceward.settings import Settings
from faceward.store import FaceRecord, SqlStore, make_engine, schema
from faceward.store.reviews import ReviewStore


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)  # every step strictly after the last
        return self.now


class Rig:
    def __init__(self, db_url: str, home: Path) -> None:
        self.clock = Clock()
        self.db_url = db_url
        self.gallery = GalleryService(SqlStore.open(db_url), Keyring(os.urandom(32)), Settings(home=home, database_url=db_url),
                                      clock=self.clock)
        self.accounts = AccountService(self.gallery, AuditLog(self.gallery.store, self.gallery.vault.tenant_key, clock=self.clock))
        self.reviews = ReviewService(self.gallery)
        self.thumbnails = Thumbnails(self.gallery)
        self.sessions = ConsoleSessions(self.accounts)
        self.tenant, self.admin = self.accounts.create_tenant("Review Org")
        consent = Consent(LawfulBasis.EXPLICIT_CONSENT, "F-1", self.clock())
        self.subject = self.gallery.create_subject(self.tenant, "Pat Example", consent).id
        self.face = new_id("f_")
        self.gallery.store.add_face(FaceRecord(self.face, self.tenant, self.subject, "m", b"sealed", {}, "0" * 64, self.clock()))

    def step(self, reviewer: str, outcome: str, search: str, note: str = "ears and scar agree", **changes: Any) -> Any:
        values = {"search_id": search, "subject_id": self.subject, "face_id": self.face,
                  "token": self.reviews.token(self.tenant, search, self.subject, self.face), "outcome": outcome, "note": note}
        return self.reviews.record(self.tenant, reviewer, **{**values, **changes})


@pytest.fixture()
def rig(db_url: str, tmp_path: Path) -> Any:
    made = Rig(db_url, tmp_path / "home")
    yield made
    made.gallery.store.close()


def test_a_confirmation_is_two_keys_agreeing(rig: Rig) -> None:
    search = new_id("q_")
    with pytest.raises(SecondReviewerRequired):
        rig.step("keyA", "confirmed", search)
    rig.step("keyA", "possible_match", search)
    with pytest.raises(SecondReviewerRequired, match="another key"):
        rig.step("keyA", "confirmed", search)
    rig.step("keyB", "not_a_match", search)
    with pytest.raises(SecondReviewerRequired):  # the standing step is no longer a possible match
        rig.step("keyC", "confirmed", search)
    rig.step("keyB", "possible_match", search)
    done = rig.step("keyA", "confirmed", search)  # A confirms B's standing possible match
    assert done.status is Outcome.CONFIRMED and done.reviewers == ["keyA", "keyB"]
    assert [s.outcome for s in done.steps] == [Outcome.POSSIBLE_MATCH, Outcome.NOT_A_MATCH, Outcome.POSSIBLE_MATCH,
                                               Outcome.CONFIRMED]
    other = new_id("q_")
    rig.step("keyA", "not_a_match", other)
    assert [c.search_id for c in rig.reviews.candidates(rig.tenant, status=Outcome.CONFIRMED)] == [search]
    assert [c.search_id for c in rig.reviews.candidates(rig.tenant)] == [other, search]  # latest first
    assert rig.reviews.candidates(rig.tenant, search_id="not-an-id") == []


def test_only_what_a_search_returned_can_be_reviewed(rig: Rig) -> None:
    search = new_id("q_")
    for changes in ({"token": "0" * 64}, {"token": "nonsense"}, {"face_id": new_id("f_")}, {"search_id": "q_x"},
                    {"subject_id": new_id("s_")}):
        with pytest.raises(NotFound):
            rig.step("keyA", "possible_match", search, **changes)
    for outcome, note in (("possible_match", ""), ("possible_match", "x" * 2001), ("possible_match", "bell\x07"),
                          ("identified", "a note")):
        with pytest.raises(InvalidInput):
            rig.step("keyA", outcome, search, note=note)
    assert rig.step("keyA", "possible_match", search, note="two lines\nof note").steps[0].note == "two lines\nof note"


def test_notes_are_sealed_with_the_subject_key_and_go_with_it(rig: Rig) -> None:
    search = new_id("q_")
    rig.step("keyA", "possible_match", search, note="distinctive tattoo on the neck")
    stored = ReviewStore(rig.gallery.store).reviews(rig.tenant)
    assert len(stored) == 1 and b"tattoo" not in stored[0].note_sealed
    rig.gallery.delete_subject(rig.tenant, rig.subject)
    assert ReviewStore(rig.gallery.store).reviews(rig.tenant) == []
    assert rig.reviews.candidates(rig.tenant) == []


def test_thumbnails_are_sealed_and_follow_the_tenant_switch(rig: Rig) -> None:
    tenant = rig.gallery.store.get_tenant(rig.tenant)
    subject = rig.gallery.store.get_subject(rig.tenant, rig.subject)
    chip = np.zeros((150, 150, 3), dtype=np.uint8)
    chip[40:110, 40:110] = 200
    rig.thumbnails.keep(tenant, subject, rig.face, chip)
    jpeg = rig.thumbnails.read(rig.tenant, rig.face)
    assert jpeg.startswith(b"\xff\xd8\xff") and len(jpeg) < 10_000
    sealed = ReviewStore(rig.gallery.store).chip(rig.tenant, rig.face)
    assert sealed is not None and jpeg not in sealed.chip_sealed
    with pytest.raises(NotFound):
        rig.thumbnails.read(rig.tenant, new_id("f_"))
    assert rig.thumbnails.set_enabled(rig.tenant, False) == 1
    with pytest.raises(ThumbnailsOff):
        rig.thumbnails.read(rig.tenant, rig.face)
    rig.thumbnails.keep(rig.gallery.store.get_tenant(rig.tenant), subject, rig.face, chip)  # off: nothing kept
    assert ReviewStore(rig.gallery.store).chip(rig.tenant, rig.face) is None
    assert rig.thumbnails.set_enabled(rig.tenant, True) == 0
    assert rig.thumbnails.settings(rig.tenant) == {"thumbnails": True}


def test_a_tampered_thumbnail_does_not_open(rig: Rig) -> None:
    tenant = rig.gallery.store.get_tenant(rig.tenant)
    other = rig.gallery.create_subject(rig.tenant, "Other", Consent(LawfulBasis.EXPLICIT_CONSENT, "F-2", rig.clock()))
    other_face = new_id("f_")
    rig.gallery.store.add_face(FaceRecord(other_face, rig.tenant, other.id, "m", b"s", {}, "1" * 64, rig.clock()))
    chip = np.full((150, 150, 3), 90, dtype=np.uint8)
    rig.thumbnails.keep(tenant, rig.gallery.store.get_subject(rig.tenant, other.id), other_face, chip)
    repo = ReviewStore(rig.gallery.store)
    moved = repo.chip(rig.tenant, other_face)
    assert moved is not None
    owner = make_engine(rig.db_url)  # the service's own role may not update chips on PostgreSQL: the owner does it
    with owner.begin() as conn:  # pretend someone with the database re-labels the chip as another subject's
        if owner.dialect.name == "postgresql":
            conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": rig.tenant})
        conn.execute(update(schema.face_chips).where(schema.face_chips.c.face_id == other_face).values(subject_id=rig.subject))
    owner.dispose()
    with pytest.raises(SealError):
        rig.thumbnails.read(rig.tenant, other_face)


def test_sessions_end_when_idle_old_signed_out_or_revoked(rig: Rig) -> None:
    session = rig.sessions.start(rig.admin, source="test")
    assert session.principal.role is Role.ADMIN and session.cookie.startswith(f"{rig.tenant}.")
    assert session.csrf_token == csrf_token(session.cookie.split(".")[1])
    assert rig.sessions.resolve(session.cookie).principal == session.principal
    for bad in (None, "", "garbage", session.cookie + "x", f"{rig.tenant}.{'A' * 43}"):
        with pytest.raises(Unauthenticated):
            rig.sessions.resolve(bad)
    rig.clock.now += IDLE + timedelta(seconds=1)
    with pytest.raises(Unauthenticated):
        rig.sessions.resolve(session.cookie)

    kept = rig.sessions.start(rig.admin, source="test")
    for _ in range(int(LIFETIME / (IDLE / 2)) + 1):  # busy all day: the absolute lifetime still ends it
        rig.clock.now += IDLE / 2
        try:
            rig.sessions.resolve(kept.cookie)
        except Unauthenticated:
            break
    else:
        pytest.fail("a session outlived its absolute lifetime")

    ended = rig.sessions.start(rig.admin, source="test")
    assert rig.sessions.end(ended.cookie) is True and rig.sessions.end(ended.cookie) is False
    with pytest.raises(Unauthenticated):
        rig.sessions.resolve(ended.cookie)

    view, token = rig.accounts.create_key(rig.tenant, Role.AUDITOR, "a", None, actor="operator", source=None)
    revoked = rig.sessions.start(token, source="test")
    rig.accounts.revoke_key(rig.tenant, view.id, actor="operator", source=None)
    with pytest.raises(Unauthenticated):
        rig.sessions.resolve(revoked.cookie)
    rig.accounts.suspend_tenant(rig.tenant)
    with pytest.raises(Unauthenticated):
        rig.sessions.start(rig.admin, source="test")
