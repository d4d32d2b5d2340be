"""``doctor`` finds what is wrong and ``--repair`` fixes it; retention purges on a controlled clock. Both stores."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from sqlalchemy import update

from faceward.errors import InvalidInput, NotFound
from faceward.security.crypto import Keyring
from faceward.security.audit import AuditLog
from faceward.services.consent import Consent
from faceward.services.gallery import GalleryService
from faceward.services.doctor import doctor
from faceward.services.retention import RetentionScheduler, purge_due, set_retention
from faceward.settings import Settings
from faceward.store import FaceRecord, SqlStore, schema
from faceward.vision.types import Quality

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
GOOD = Quality(face_px=120, sharpness=80.0, detector_score=1.0, frontalness=0.95)
BOX = {"left": 10, "top": 10, "right": 130, "bottom": 130}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def fake_engine() -> Any:
    """Only what enrollment by descriptor asks of an engine: the id, size and (no) manifest of its templates."""
    return SimpleNamespace(template_id="dlib-resnet-v1/flip", embedding_size=128, manifest=None)


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(128).astype(np.float32)
    return v / np.linalg.norm(v)


def make_gallery(url: str, home: Path) -> GalleryService:
    return GalleryService(SqlStore.open(url), Keyring(os.urandom(32)), Settings(home=home), engine=fake_engine(), clock=Clock())


@pytest.fixture()
def gallery(db_url: str, tmp_path: Path) -> Iterator[GalleryService]:
    service = make_gallery(db_url, tmp_path / "home")
    yield service
    service.store.close()


@pytest.fixture()
def sqlite_gallery(tmp_path: Path) -> Iterator[GalleryService]:
    """SQLite only: its foreign keys can be switched off for one connection, PostgreSQL's cannot."""
    service = make_gallery(f"sqlite:///{tmp_path / 'faceward.db'}", tmp_path / "home")
    yield service
    service.store.close()


def consent(now: datetime, expires: datetime | None = None) -> Consent:
    return Consent.build("explicit_consent", "form-1", now - timedelta(hours=1), expires, now=now)


def add_subject(g: GalleryService, tenant: str, name: str, faces: int, *, expires: datetime | None = None) -> tuple[str, list[str]]:
    subject = g.create_subject(tenant, name, consent(g.clock(), expires))
    ids = []
    for n in range(faces):
        seed = int(hashlib.sha256(f"{name}{n}".encode()).hexdigest()[:8], 16)
        ids.append(g.admit(tenant, subject.id, unit(seed), GOOD, BOX, f"{seed:064x}", 1).id)
    return subject.id, ids


def kinds(report: Any) -> set[str]:
    return {p["problem"] for p in report.problems}


def test_a_healthy_store_passes(gallery: GalleryService) -> None:
    tenant = gallery.create_tenant("Org")
    a, _ = add_subject(gallery, tenant, "A", 2)
    add_subject(gallery, tenant, "B", 2)
    c, _ = add_subject(gallery, tenant, "C", 1)
    gallery.delete_subject(tenant, c)
    gallery.indexes.get(tenant)  # a running index, as in a server
    report = doctor(gallery)
    assert report.ok, report.problems
    checks = report.checks
    assert checks["faces"] == {"checked": 4, "orphans": 0, "duplicates": 0}
    assert checks["subject_keys"]["checked"] == 2 and checks["templates"]["checked"] == 4
    assert checks["erasures"]["ledger_entries"] == 2 and checks["erasures"]["still_present"] == 0  # its key, C
    assert checks["index"]["source"] == "running" and checks["index"]["faces"] == 4
    assert report.as_dict()["ok"] is True and report.as_dict()["problems"] == []


def allow_duplicates(url: str) -> None:
    """Drop the unique (subject, image, model) index, as a store from before revision 0005 lacks it."""
    from faceward.store import make_engine

    engine = make_engine(url)  # the login role: the application role may not drop an index
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ux_faces_subject_image")
    finally:
        engine.dispose()


def test_repair_finishes_erasures_fills_the_ledger_and_rebuilds_the_index(gallery: GalleryService, db_url: str) -> None:
    tenant = gallery.create_tenant("Org")
    a, _ = add_subject(gallery, tenant, "A", 1)
    b, _ = add_subject(gallery, tenant, "B", 2)
    c, _ = add_subject(gallery, tenant, "C", 1)
    d, _ = add_subject(gallery, tenant, "D", 1)
    entry = gallery.indexes.get(tenant)
    # A: crash after the ledger write, before the store delete. C: an erasure that missed the ledger.
    gallery.ledger.record_subject(tenant, a)
    gallery.store.delete_subject(tenant, c, at=T0)
    # The running index holds a vector the store does not (an erased face), and misses one it does.
    entry.index.add(np.array([10_000], dtype=np.int64), unit(1)[None, :])
    entry.owner[10_000] = ("f_ghost", "s_ghost")
    missing = next(label for label, (_, s) in entry.owner.items() if s == d)
    entry.index.remove([missing])
    entry.owner.pop(missing)
    # B: the same image stored twice for one subject (possible before revision 0005).
    allow_duplicates(db_url)
    first = gallery.store.faces_of(tenant, b)[0]
    twin = "f_" + "0" * 28
    subject = gallery.store.get_subject(tenant, b)
    template = gallery.vault.open_template(subject, first.id, first.template_sealed)
    values = {k: getattr(first, k) for k in first.__slots__} | {
        "id": twin, "template_sealed": gallery.vault.seal_template(subject, twin, template)}
    gallery.store.add_face(FaceRecord(**values))

    report = doctor(gallery)
    assert not report.ok
    assert {"subject_still_present", "missing_from_ledger", "erased_or_unknown", "missing", "duplicate"} <= kinds(report)
    assert report.checks["erasures"]["still_present"] == 1 and report.checks["erasures"]["missing_from_ledger"] == 1

    fixed = doctor(gallery, repair=True)
    assert fixed.ok, fixed.problems
    done = {r["repair"] for r in fixed.repairs}
    assert {"erasure_finished", "ledger_entry_added", "index_rebuilt", "duplicates_removed"} <= done
    with pytest.raises(NotFound):
        gallery.store.get_subject(tenant, a)
    assert gallery.ledger.erased().subject(tenant, c) is not None
    assert len(gallery.store.faces_of(tenant, b)) == 2
    entry = gallery.indexes.get(tenant)
    assert {s for _, s in entry.owner.values()} == {b, d} and len(entry.index) == 3


def test_what_cannot_be_repaired_is_reported_not_deleted(gallery: GalleryService) -> None:
    tenant = gallery.create_tenant("Org")
    a, (fa,) = add_subject(gallery, tenant, "A", 1)
    b, (fb,) = add_subject(gallery, tenant, "B", 1)
    c, _ = add_subject(gallery, tenant, "C", 1)
    entry = gallery.indexes.get(tenant)  # a running index, loaded before the damage, that holds a ghost: its repair
    entry.index.add(np.array([10_000], dtype=np.int64), unit(1)[None, :])  # is a rebuild, which must fail cleanly
    entry.owner[10_000] = ("f_ghost", "s_ghost")
    faces, subjects = schema.faces, schema.subjects
    sealed_b = gallery.store.faces_of(tenant, b)[0].template_sealed
    key_c = gallery.store.get_subject(tenant, a).wrapped_key
    with gallery.store.transaction(tenant) as conn:
        # A's template replaced by B's sealed bytes (bound to another row: must not open);
        conn.execute(update(faces).where(faces.c.id == fa).values(template_sealed=sealed_b))
        # C's wrapped key replaced by A's (bound to another subject: must not open).
        conn.execute(update(subjects).where(subjects.c.id == c).values(wrapped_key=key_c))
    report = doctor(gallery, repair=True)
    assert not report.ok
    assert report.checks["templates"]["unopenable"] == 1 and report.checks["subject_keys"]["unopenable"] == 1
    assert {"unopenable", "unbuildable"} == kinds(report)
    assert {r["repair"] for r in report.repairs} == {"index_rebuild_failed"}
    assert gallery.store.count_faces(tenant) == 3  # nothing was deleted


def test_orphaned_faces_are_found_and_removed(sqlite_gallery: GalleryService) -> None:
    gallery = sqlite_gallery
    tenant = gallery.create_tenant("Org")
    a, _ = add_subject(gallery, tenant, "A", 2)
    add_subject(gallery, tenant, "B", 1)
    with gallery.store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.exec_driver_sql("DELETE FROM subjects WHERE id = ?", (a,))
        conn.commit()
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
    report = doctor(gallery)
    assert report.checks["faces"]["orphans"] == 2 and "orphan" in kinds(report)
    fixed = doctor(gallery, repair=True)
    assert fixed.ok and gallery.store.count_faces(tenant) == 1


def test_a_restart_rebuilds_the_index_from_the_store_without_the_erased(gallery: GalleryService, tmp_path: Path) -> None:
    """No index is kept on disk (decision 026): a fresh graph over the same store rebuilds it, erasures included."""
    tenant = gallery.create_tenant("Org")
    a, erased = add_subject(gallery, tenant, "A", 2)
    add_subject(gallery, tenant, "B", 1)
    gallery.indexes.get(tenant)
    gallery.delete_subject(tenant, a)
    restarted = GalleryService(gallery.store, gallery.keyring, gallery.settings, engine=fake_engine(), clock=gallery.clock)
    seq, faces, index = restarted.indexes.inspect(tenant, lambda ix: ix)
    assert len(index) == 1 and not set(erased) & {face_id for face_id, _ in faces.values()}
    assert doctor(restarted).ok


def test_consent_expiry_and_retention_purge_on_schedule(gallery: GalleryService) -> None:
    clock: Clock = gallery.clock  # type: ignore[assignment]
    audit = AuditLog(gallery.store, gallery.vault.tenant_key, clock=clock)
    kept_forever = gallery.create_tenant("No retention")
    tenant = gallery.create_tenant("Org")
    set_retention(gallery, tenant, 30)
    expiring, _ = add_subject(gallery, tenant, "Expiring", 1, expires=T0 + timedelta(days=10))
    old, _ = add_subject(gallery, tenant, "Old", 2)
    forever, _ = add_subject(gallery, kept_forever, "Forever", 1)
    clock.now = T0 + timedelta(days=20)
    young, _ = add_subject(gallery, tenant, "Young", 1)
    gallery.indexes.get(tenant)

    clock.now = T0 + timedelta(days=5)
    assert purge_due(gallery, audit=audit).purged == []

    clock.now = T0 + timedelta(days=10, seconds=1)
    report = purge_due(gallery, audit=audit)
    assert [(p["subject_id"], p["reason"]) for p in report.purged] == [(expiring, "consent_expired")]

    clock.now = T0 + timedelta(days=30, seconds=1)
    report = purge_due(gallery, audit=audit)
    assert [(p["subject_id"], p["reason"]) for p in report.purged] == [(old, "retention")]
    assert report.as_dict()["by_reason"] == {"retention": 1}

    for gone in (expiring, old):
        with pytest.raises(NotFound):
            gallery.get_subject(tenant, gone)
        assert gallery.ledger.erased().subject(tenant, gone) is not None
    owners = {s for _, s in gallery.indexes.get(tenant).owner.values()}
    assert owners == {young}
    gallery.get_subject(kept_forever, forever)
    purges = audit.entries(tenant, action="subject.purge")
    assert [(e.actor, e.details) for e in purges] == [
        ("system:retention", {"subject_id": expiring, "reason": "consent_expired"}),
        ("system:retention", {"subject_id": old, "reason": "retention"}),
    ]
    assert doctor(gallery).ok

    clock.now = T0 + timedelta(days=50, seconds=1)
    assert [p["subject_id"] for p in purge_due(gallery).purged] == [young]


def test_retention_setting_is_validated(gallery: GalleryService) -> None:
    tenant = gallery.create_tenant("Org")
    for bad in (0, -1, 100_000):
        with pytest.raises(InvalidInput):
            set_retention(gallery, tenant, bad)
    set_retention(gallery, tenant, 7)
    assert gallery.store.get_tenant(tenant).settings["retention_days"] == 7
    set_retention(gallery, tenant, None)
    assert "retention_days" not in gallery.store.get_tenant(tenant).settings


def test_the_scheduler_purges_in_the_background(gallery: GalleryService) -> None:
    clock: Clock = gallery.clock  # type: ignore[assignment]
    tenant = gallery.create_tenant("Org")
    subject, _ = add_subject(gallery, tenant, "Expiring", 1, expires=T0 + timedelta(days=1))
    clock.now = T0 + timedelta(days=2)
    seen = threading.Event()
    scheduler = RetentionScheduler(gallery, every=0.05, on_report=lambda r: r.purged and seen.set())
    scheduler.start()
    try:
        assert seen.wait(10)
    finally:
        scheduler.stop()
    with pytest.raises(NotFound):
        gallery.get_subject(tenant, subject)


def test_a_model_migration_in_progress_is_not_a_problem(gallery: GalleryService) -> None:
    tenant = gallery.create_tenant("Org")
    a, (face_id,) = add_subject(gallery, tenant, "A", 1)
    first = gallery.store.faces_of(tenant, a)[0]
    subject = gallery.store.get_subject(tenant, a)
    newer = "f_" + "2" * 28  # the same photo's template of the model being migrated to, 512 values
    template = unit(5).repeat(4) / 2.0
    values = {k: getattr(first, k) for k in first.__slots__} | {
        "id": newer, "model_id": "another-model", "template_sealed": gallery.vault.seal_template(subject, newer, template.tobytes())}
    gallery.store.add_face(FaceRecord(**values))
    gallery.indexes.get(tenant)
    report = doctor(gallery, repair=True)
    assert report.ok and report.repairs == [], report.problems
    assert report.checks["templates"]["other_model"] == 1 and report.checks["faces"]["duplicates"] == 0
    assert gallery.store.count_faces(tenant) == 2
