"""Review steps are sealed (#12): the store keeps no outcome, reviewer, search or subject of a step in clear.

On both stores: what a new step stores; and a database made at revision 0005 with steps in
clear, migrated to head, whose steps the service then seals (at start, or by ``faceward doctor
--repair``) without changing what the review pages read.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.pool import NullPool

from faceward.security.crypto import Keyring
from faceward.security.errors import SealError
from faceward.security.audit import AuditLog
from faceward.services.accounts import AccountService
from faceward.services.consent import Consent, LawfulBasis
from faceward.services.doctor import doctor
from faceward.services.gallery import GalleryService, new_id
from faceward.services.reviews import Outcome, ReviewService
from faceward.settings import Settings
from faceward.store import SqlStore, make_engine, schema
from faceward.store.migrate import alembic_config
from faceward.store.reviews import ReviewStore
from faceward.wiring import build_services

CLEAR_COLUMNS = ("search_id", "subject_id", "face_id", "reviewer_key_id", "outcome")
OUTCOMES = [o.value.encode() for o in Outcome]


def _rows(store: SqlStore, tenant_id: str) -> list[dict[str, Any]]:
    with store.transaction(tenant_id) as conn:
        return [dict(r) for r in conn.execute(select(schema.reviews).where(schema.reviews.c.tenant_id == tenant_id)).mappings()]


def _assert_sealed(rows: list[dict[str, Any]], *ids: str) -> None:
    assert rows
    for row in rows:
        assert all(row[c] is None for c in CLEAR_COLUMNS), row
        assert row["step_sealed"] and row["candidate_ref"] and row["search_ref"] and row["subject_ref"]
        values = b"|".join(bytes(v) if isinstance(v, (bytes, memoryview)) else str(v).encode() for v in row.values())
        assert not [o for o in OUTCOMES if o in values]
        assert not [i for i in ids if i.encode() in values], row
    # one length whatever the outcome: a step's size does not tell a "confirmed" from a "not a match"
    assert len({len(bytes(r["step_sealed"])) for r in rows}) == 1


def test_a_step_stores_no_outcome_reviewer_search_or_subject(db_url: str, tmp_path: Path) -> None:
    gallery = GalleryService(SqlStore.open(db_url), Keyring(os.urandom(32)), Settings(home=tmp_path, database_url=db_url))
    reviews = ReviewService(gallery)
    tenant_id, _ = AccountService(gallery, AuditLog(gallery.store, gallery.vault.tenant_key)).create_tenant("Org")
    subject = gallery.create_subject(tenant_id, "Pat", Consent(LawfulBasis.EXPLICIT_CONSENT, "F-1", gallery.clock())).id
    search, face = new_id("q_"), new_id("f_")
    token = reviews.token(tenant_id, search, subject, face)
    step = {"search_id": search, "subject_id": subject, "face_id": face, "token": token, "note": "scar agrees"}
    reviews.record(tenant_id, "keyAAAAAAAAAAAAA", outcome="possible_match", **step)
    reviews.record(tenant_id, "keyBBBBBBBBBBBBB", outcome="confirmed", **step)
    reviews.record(tenant_id, "keyBBBBBBBBBBBBB", outcome="not_a_match", **step)
    rows = _rows(gallery.store, tenant_id)
    _assert_sealed(rows, search, subject, face, "keyAAAAAAAAAAAAA", "keyBBBBBBBBBBBBB")
    # What the review pages read is unchanged; a sealed step moved to another row does not open.
    [found] = reviews.candidates(tenant_id, search_id=search)
    assert [s.outcome for s in found.steps] == [Outcome.POSSIBLE_MATCH, Outcome.CONFIRMED, Outcome.NOT_A_MATCH]
    assert found.reviewers == ["keyAAAAAAAAAAAAA", "keyBBBBBBBBBBBBB"] and found.face_id == face
    with pytest.raises(SealError):
        gallery.vault.open_review_step(tenant_id, rows[1]["id"], bytes(rows[0]["step_sealed"]))
    gallery.store.close()


@pytest.mark.parametrize("sealed_by", ["start", "start after a keyless migration", "doctor"])
def test_steps_stored_in_clear_before_0006_are_sealed_after_the_migration(db_url: str, tmp_path: Path, sealed_by: str) -> None:
    master = os.urandom(32)
    owner = make_engine(db_url, poolclass=NullPool)
    with owner.begin() as conn:
        command.upgrade(alembic_config(conn), "0005")
    owner.dispose()
    # The service as it was at 0005 (tenants, subjects and notes did not change), and two steps in clear.
    old = GalleryService(SqlStore.open(db_url, create=False), Keyring(master), Settings(home=tmp_path, database_url=db_url))
    tenant_id, _ = AccountService(old, AuditLog(old.store, old.vault.tenant_key)).create_tenant("Org")
    subject = old.create_subject(tenant_id, "Pat", Consent(LawfulBasis.EXPLICIT_CONSENT, "F-1", old.clock()))
    search, face = new_id("q_"), new_id("f_")
    stored = old.store.get_subject(tenant_id, subject.id)
    with old.store.transaction(tenant_id) as conn:
        for n, (key, outcome) in enumerate((("keyAAAAAAAAAAAAA", "possible_match"), ("keyBBBBBBBBBBBBB", "confirmed"))):
            review_id = new_id("r_")
            conn.execute(text(
                "INSERT INTO reviews (id, tenant_id, search_id, subject_id, face_id, reviewer_key_id, outcome, note_sealed, "
                "created_at) VALUES (:id, :t, :q, :s, :f, :k, :o, :n, :at)"
            ), {"id": review_id, "t": tenant_id, "q": search, "s": subject.id, "f": face, "k": key, "o": outcome,
                "n": old.vault.seal_review_note(stored, review_id, f"note {n}"), "at": old.clock()})
    old.store.close()

    settings = Settings(home=tmp_path, database_url=db_url, master_key=base64.b64encode(master).decode())
    if sealed_by.startswith("start"):
        if sealed_by == "start after a keyless migration":  # `faceward init` with the owner's URL, then the service
            SqlStore.open(db_url).close()
        services = build_services(settings, analysis_workers=False)
        gallery, reviews = services.gallery, services.console.reviews
        assert ReviewStore(gallery.store).clear_steps_pending() == 0  # the next start does not look again
    else:
        gallery = GalleryService(SqlStore.open(db_url), Keyring(master), settings)
        reviews = ReviewService(gallery)
        # Migrated, not sealed yet: still read as before, and the doctor names them.
        assert [s.outcome for s in reviews.candidate(tenant_id, search, subject.id).steps] == [
            Outcome.POSSIBLE_MATCH, Outcome.CONFIRMED]
        report = doctor(gallery, running_index=False)
        assert report.checks["reviews"]["in_clear"] == 2 and not report.ok
        report = doctor(gallery, repair=True, running_index=False)
        assert {"repair": "reviews_sealed", "tenant_id": tenant_id, "steps": 2} in report.repairs
        assert report.checks["reviews"]["in_clear"] == 0
        assert ReviewStore(gallery.store).clear_steps_pending() == 2  # counted by 0006: the next start checks, finds none
        assert reviews.seal_pending() == 0 and ReviewStore(gallery.store).clear_steps_pending() == 0
    _assert_sealed(_rows(gallery.store, tenant_id), search, subject.id, face, "keyAAAAAAAAAAAAA", "keyBBBBBBBBBBBBB")
    found = reviews.candidate(tenant_id, search, subject.id)
    assert [(s.reviewer_key_id, s.outcome, s.note) for s in found.steps] == [
        ("keyAAAAAAAAAAAAA", Outcome.POSSIBLE_MATCH, "note 0"), ("keyBBBBBBBBBBBBB", Outcome.CONFIRMED, "note 1")]
    assert reviews.seal_clear_steps(tenant_id) == 0
    # Erasing the subject still takes its (now sealed) steps with it.
    gallery.delete_subject(tenant_id, subject.id)
    assert _rows(gallery.store, tenant_id) == []
    gallery.store.close()
    if db_url.startswith("sqlite"):
        stolen = b"".join(p.read_bytes() for p in Path(db_url.removeprefix("sqlite:///")).parent.glob("faceward.db*"))
        assert not [o for o in OUTCOMES if o in stolen] and search.encode() not in stolen
