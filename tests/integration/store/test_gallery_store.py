"""The gallery store contract, run on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from faceward.store import FaceRecord, NotFound, SqlStore, SubjectRecord, TenantRecord
from faceward.store.errors import Conflict

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.fixture()
def store(db_url: str) -> SqlStore:
    s = SqlStore.open(db_url)
    yield s
    s.close()


def tenant(store: SqlStore, tid: str) -> None:
    store.add_tenant(TenantRecord(tid, b"sealed-name", b"wrapped", "active", NOW, {}))


def subject(store: SqlStore, tid: str, sid: str, ref: str | None = None) -> None:
    store.add_subject(SubjectRecord(sid, tid, b"n", "explicit_consent", b"r", NOW, None, b"k", NOW, ref))


def face(store: SqlStore, tid: str, sid: str, fid: str, sha: str = "0" * 64) -> FaceRecord:
    return store.add_face(FaceRecord(fid, tid, sid, "m", b"t" * 16, {"face_px": 90}, sha, NOW))


def test_subjects_and_faces_round_trip(store: SqlStore) -> None:
    tenant(store, "t1")
    subject(store, "t1", "s1", ref="abc")
    a = face(store, "t1", "s1", "f1")
    b = face(store, "t1", "s1", "f2", "1" * 64)
    assert b.seq > a.seq > 0
    assert [f.id for f in store.faces_of("t1", "s1")] == ["f1", "f2"]
    assert store.get_subject("t1", "s1").display_name_sealed == b"n"
    assert store.subject_by_ref("t1", "abc") is not None and store.subject_by_ref("t1", "zzz") is None
    assert store.count_faces("t1") == 2 and store.count_subjects("t1") == 1
    assert store.has_image("t1", "s1", "1" * 64) and not store.has_image("t1", "s1", "2" * 64)


def test_tenants_never_see_each_other(store: SqlStore) -> None:
    tenant(store, "t1")
    tenant(store, "t2")
    subject(store, "t1", "s1")
    face(store, "t1", "s1", "f1")
    with pytest.raises(NotFound):
        store.get_subject("t2", "s1")
    with pytest.raises(NotFound):
        store.delete_subject("t2", "s1", at=NOW)
    with pytest.raises(NotFound):
        face(store, "t2", "s1", "f9")
    assert store.list_subjects("t2") == [] and store.faces_since("t2", 0) == []
    assert store.faces_of("t2", "s1") == []


def test_erasure_removes_faces_and_records_the_change(store: SqlStore) -> None:
    tenant(store, "t1")
    subject(store, "t1", "s1")
    face(store, "t1", "s1", "f1")
    before = store.current_seq()
    assert store.delete_subject("t1", "s1", at=NOW) == ["f1"]
    assert store.faces_of("t1", "s1") == [] and store.faces_since("t1", 0) == []
    erasures = store.erasures_since("t1", before)
    assert [s for _, s in erasures] == ["s1"]
    with pytest.raises(NotFound):
        face(store, "t1", "s1", "f2")  # a face for an erased subject is refused


def test_duplicate_ids_conflict(store: SqlStore) -> None:
    tenant(store, "t1")
    with pytest.raises(Conflict):
        tenant(store, "t1")


def test_paging(store: SqlStore) -> None:
    tenant(store, "t1")
    for i in range(5):
        subject(store, "t1", f"s{i}")
    page = store.list_subjects("t1", limit=2, offset=2)
    assert len(page) == 2 and len({s.id for s in store.list_subjects("t1", limit=10)}) == 5


def test_tenant_delete_removes_rows(store: SqlStore) -> None:
    tenant(store, "t1")
    subject(store, "t1", "s1")
    face(store, "t1", "s1", "f1")
    store.delete_tenant("t1")
    with pytest.raises(NotFound):
        store.get_tenant("t1")
    assert store.faces_since("t1", 0) == []
