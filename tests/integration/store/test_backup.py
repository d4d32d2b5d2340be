"""Backups are sealed and consistent; restoring one taken before an erasure does not bring the subject back. Both stores."""

from __future__ import annotations

import base64
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from faceward.errors import NotFound
from faceward.security.crypto import Keyring, aad, open_sealed
from faceward.security.errors import SealError
from faceward.store.backup import BackupError, backup, read_header, restore
from faceward.services.consent import Consent
from faceward.services.gallery import GalleryService, new_id, utcnow
from faceward.services.reviews import ReviewService
from faceward.store.ledger import Erasure, ErasureLedger, LedgerError, LedgerHead
from faceward.services.doctor import doctor
from faceward.settings import Settings
from faceward.store import SqlStore
from faceward.vision import FaceEngine
from faceward.vision.types import Quality
from tests.integration.store.clear_ledger import write_clear


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine()


@pytest.fixture()
def keyring() -> Keyring:
    return Keyring(os.urandom(32))


@pytest.fixture()
def target_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty store of the same kind to restore into: a fresh home's SQLite file, or a new PostgreSQL database."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh-home' / 'faceward.db'}"
        return
    import psycopg

    base, _, query = db_url.partition("?")
    admin = base
    name = "fw_restore_" + uuid.uuid4().hex[:10]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def gallery_at(url: str, home: Path, keyring: Keyring, engine: FaceEngine, ledger: Path) -> GalleryService:
    return GalleryService(SqlStore.open(url), keyring, Settings(home=home, erasure_ledger=ledger), engine=engine)


def consent() -> Consent:
    return Consent.build("explicit_consent", "form-9", None, None, now=utcnow())


def test_an_erased_subject_stays_erased_after_restoring_an_older_backup(
    db_url: str, target_url: str, tmp_path: Path, keyring: Keyring, engine: FaceEngine,
    astronaut_jpeg: bytes, astronaut_probe: bytes,
) -> None:
    ledger_file = tmp_path / "beside-the-master-key" / "erasure-ledger.jsonl"
    old = gallery_at(db_url, tmp_path / "home", keyring, engine, ledger_file)
    tenant = old.create_tenant("Org")
    erased = old.create_subject(tenant, "Eileen Collins", consent())
    kept = old.create_subject(tenant, "Pam Melroy", consent())
    old.enroll(tenant, erased.id, astronaut_jpeg)
    old.enroll(tenant, kept.id, astronaut_probe)
    erased_face = old.store.faces_of(tenant, erased.id)[0]
    erased_key = old.store.get_subject(tenant, erased.id).wrapped_key
    search = new_id("q_")  # a review step of the subject that will be erased after the backup
    ReviewService(old).record(tenant, "keyAAAAAAAAAAAAA", search_id=search, subject_id=erased.id, face_id=None,
                              token=ReviewService(old).token(tenant, search, erased.id, None), outcome="possible_match",
                              note="same scar")

    archive = tmp_path / "backups" / "before.fwb"
    info = backup(db_url, keyring, old.ledger, archive, scratch=tmp_path / "home")
    assert info.ledger.count == 0 and (archive.stat().st_mode & 0o777) == 0o600
    assert b"Eileen" not in archive.read_bytes() and read_header(archive)["database"] == info.database

    old.delete_subject(tenant, erased.id)
    old.store.close()

    report = restore(archive, target_url, keyring, ErasureLedger(ledger_file, keyring), scratch=tmp_path / "fresh-home")
    assert report.subjects_erased_again == [(tenant, erased.id)] and report.backup_id == info.backup_id
    # The ledger did that without naming anyone: neither the subject's id nor its tenant's is in its bytes.
    assert erased.id.encode() not in ledger_file.read_bytes() and tenant.encode() not in ledger_file.read_bytes()

    new = gallery_at(target_url, tmp_path / "fresh-home", keyring, engine, ledger_file)
    try:
        # Absent ...
        with pytest.raises(NotFound):
            new.get_subject(tenant, erased.id)
        assert new.store.count_subjects(tenant) == 1 and new.store.count_faces(tenant) == 1
        # ... and unreadable: no key left in the restored store opens its sealed template.
        tenant_key = new.vault.tenant_key(tenant)
        with pytest.raises(SealError):
            open_sealed(tenant_key, erased_face.template_sealed, aad(tenant, "faces", erased_face.id))
        for view in new.list_subjects(tenant):
            subject_key = Keyring.subject_key(tenant_key, tenant, view.id, new.store.get_subject(tenant, view.id).wrapped_key)
            with pytest.raises(SealError):
                open_sealed(subject_key, erased_face.template_sealed, aad(tenant, "faces", erased_face.id))
        # Its sealed review step names it only under the tenant key, so the restore (no key open) left it:
        # the doctor names it, and `faceward restore` deletes it as soon as the keys are open (#12).
        reviews = ReviewService(new)
        assert reviews.steps_of_erased(tenant, [erased.id]) == 1
        assert doctor(new).checks["reviews"]["of_erased_subjects"] == 1
        assert reviews.forget_erased(tenant, [erased.id]) == 1 and reviews.steps_of_erased(tenant, [erased.id]) == 0
        if target_url.startswith("sqlite"):
            raw = Path(target_url.split("///", 1)[1]).read_bytes()
            assert erased_key not in raw and erased_face.template_sealed not in raw  # not even in free pages
        # The other subject is intact and searchable.
        assert new.get_subject(tenant, kept.id).display_name == "Pam Melroy"
        result = new.search(tenant, astronaut_jpeg)
        assert [c.subject_id for c in result.candidates] == [kept.id]
        assert doctor(new).ok
    finally:
        new.store.close()


def test_restore_needs_the_ledger(
    db_url: str, target_url: str, tmp_path: Path, keyring: Keyring, engine: FaceEngine, astronaut_jpeg: bytes
) -> None:
    ledger_file = tmp_path / "ledger.jsonl"
    old = gallery_at(db_url, tmp_path / "home", keyring, engine, ledger_file)
    tenant = old.create_tenant("Org")
    first = old.create_subject(tenant, "First", consent())
    old.delete_subject(tenant, first.id)
    subject = old.create_subject(tenant, "Eileen", consent())
    old.enroll(tenant, subject.id, astronaut_jpeg)
    archive = tmp_path / "b.fwb"
    backup(db_url, keyring, old.ledger, archive, scratch=tmp_path / "home")
    old.delete_subject(tenant, subject.id)
    old.store.close()

    with pytest.raises(BackupError, match=r"no erasure ledger.*`faceward restore --without-ledger`"):
        restore(archive, target_url, keyring, ErasureLedger(tmp_path / "lost.jsonl", keyring), scratch=tmp_path)
    older = ErasureLedger(tmp_path / "older.jsonl", keyring)
    older.record_subject(tenant, "s_someone_else")
    with pytest.raises(LedgerError, match="does not extend"):
        restore(archive, target_url, keyring, older, scratch=tmp_path)
    # Knowingly without it, the subject erased after the backup comes back: the ledger is what erases it.
    report = restore(archive, target_url, keyring, ErasureLedger(tmp_path / "lost.jsonl", keyring), scratch=tmp_path,
                     allow_missing_ledger=True)
    assert report.subjects_erased_again == []
    back = SqlStore.open(target_url)
    try:
        assert back.get_subject(tenant, subject.id).id == subject.id
    finally:
        back.close()
    with pytest.raises(BackupError, match="already holds"):
        restore(archive, target_url, keyring, ErasureLedger(ledger_file, keyring), scratch=tmp_path)


class LedgerBeforeVersion2(ErasureLedger):
    """The ledger as faceward saw it before version 2, when it made a backup: the head of the clear chain."""

    def __init__(self, path: Path, keyring: Keyring, head: LedgerHead) -> None:
        super().__init__(path, keyring)
        self._old_head = head

    def head(self, entries: list[Erasure] | None = None) -> LedgerHead:
        return self._old_head


def test_a_restore_rewrites_a_ledger_kept_in_clear_and_still_erases_from_it(
    db_url: str, target_url: str, tmp_path: Path, keyring: Keyring, engine: FaceEngine
) -> None:
    """Upgrading: the ledger and the backup's recorded head both date from before version 2."""
    ledger_file = tmp_path / "beside-the-master-key" / "erasure-ledger.jsonl"
    old = gallery_at(db_url, tmp_path / "home", keyring, engine, tmp_path / "unused.jsonl")
    tenant = old.create_tenant("Org")
    earlier, later, kept = (old.create_subject(tenant, name, consent()).id for name in ("Earlier", "Later", "Kept"))
    old.store.delete_subject(tenant, earlier, at=utcnow())
    heads = write_clear(ledger_file, [("subject", tenant, earlier)])
    archive = tmp_path / "before.fwb"
    backup(db_url, keyring, LedgerBeforeVersion2(ledger_file, keyring, heads[-1]), archive, scratch=tmp_path / "home")
    old.store.delete_subject(tenant, later, at=utcnow())  # erased after the backup, in the old format
    write_clear(ledger_file, [("subject", tenant, earlier), ("subject", tenant, later)])
    old.store.close()

    report = restore(archive, target_url, keyring, ErasureLedger(ledger_file, keyring), scratch=tmp_path / "fresh-home")
    assert report.subjects_erased_again == [(tenant, later)]
    raw = ledger_file.read_bytes()
    assert all(name.encode() not in raw for name in (tenant, earlier, later))
    back = SqlStore.open(target_url)
    try:
        assert {s.id for s in back.list_subjects(tenant)} == {kept}
    finally:
        back.close()


def test_only_the_master_key_opens_an_intact_backup(tmp_path: Path, keyring: Keyring) -> None:
    url = f"sqlite:///{tmp_path / 'home' / 'faceward.db'}"
    store = SqlStore.open(url)
    store.close()
    archive = tmp_path / "b.fwb"
    ledger = ErasureLedger(tmp_path / "ledger.jsonl", keyring)
    backup(url, keyring, ledger, archive, scratch=tmp_path)
    data = archive.read_bytes()

    def attempt(content: bytes, ring: Keyring) -> None:
        broken = tmp_path / "broken.fwb"
        broken.write_bytes(content)
        fresh = tmp_path / f"r{uuid.uuid4().hex[:6]}" / "faceward.db"
        restore(broken, f"sqlite:///{fresh}", ring, ledger, scratch=tmp_path)

    with pytest.raises(BackupError, match="master key"):
        attempt(data, Keyring(os.urandom(32)))
    for damaged in (data[:-7], data[:-1] + bytes([data[-1] ^ 1]), data + b"x", data.replace(b'"sqlite"', b'"SQLITE"')):
        with pytest.raises(BackupError):
            attempt(damaged, keyring)
    attempt(data, keyring)  # the intact one restores


def test_backups_are_consistent_while_enrollment_goes_on(db_url: str, target_url: str, tmp_path: Path, keyring: Keyring, engine: FaceEngine) -> None:
    g = gallery_at(db_url, tmp_path / "home", keyring, engine, tmp_path / "ledger.jsonl")
    tenant = g.create_tenant("Org")
    subjects = [g.create_subject(tenant, f"S{n}", consent()).id for n in range(4)]
    good = Quality(face_px=120, sharpness=80.0, detector_score=1.0, frontalness=0.95)
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        n = 0
        rng = np.random.default_rng(0)
        while not stop.is_set():
            v = rng.standard_normal(128).astype(np.float32)
            g.admit(tenant, subjects[n % 4], v / np.linalg.norm(v), good, {}, f"{n:064x}", 1)
            n += 1
            written.append(n)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 20:
            threading.Event().wait(0.01)
        archive = tmp_path / "online.fwb"
        backup(db_url, keyring, g.ledger, archive, scratch=tmp_path)
    finally:
        stop.set()
        thread.join()
    restore(archive, target_url, keyring, g.ledger, scratch=tmp_path)
    copy = gallery_at(target_url, tmp_path / "copy", keyring, engine, tmp_path / "ledger.jsonl")
    try:
        restored = copy.store.count_faces(tenant)
        assert 20 <= restored <= len(written)
        seqs = [f.seq for f in copy.store.faces_since(tenant, 0)]
        assert seqs == sorted(seqs) and len(set(seqs)) == restored
        assert copy.store.current_seq() >= max(seqs)  # no sequence number is reused after a restore
        assert doctor(copy).ok
    finally:
        copy.store.close()
        g.store.close()


def test_the_backup_key_is_wrapped_not_stored(tmp_path: Path, keyring: Keyring) -> None:
    url = f"sqlite:///{tmp_path / 'home' / 'faceward.db'}"
    SqlStore.open(url).close()
    archive = tmp_path / "b.fwb"
    backup(url, keyring, ErasureLedger(tmp_path / "l.jsonl", keyring), archive, scratch=tmp_path)
    header = read_header(archive)
    wrapped = base64.b64decode(header["wrapped_key"])
    assert len(wrapped) == 1 + 12 + 32 + 16 and header["ledger"] == {"count": 0, "hash": "0" * 64}
