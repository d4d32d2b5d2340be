"""Erasing a subject leaves none of its bytes in the SQLite file or its WAL."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from faceward.store import FaceRecord, SqlStore, SubjectRecord, TenantRecord

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
MARK = b"WRAPPED-KEY-MARKER-0123456789abcdef"
TEMPLATE = b"TEMPLATE-MARKER-fedcba9876543210" * 4


def test_erased_subject_bytes_leave_the_file_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    store = SqlStore.open(f"sqlite:///{path}")
    store.add_tenant(TenantRecord("t1", b"name", b"wrapped", "active", NOW, {}))
    store.add_subject(SubjectRecord("s1", "t1", b"n", "explicit_consent", b"r", NOW, None, MARK, NOW))
    store.add_face(FaceRecord("f1", "t1", "s1", "m", TEMPLATE, {}, "0" * 64, NOW))
    store.delete_subject("t1", "s1", at=NOW)
    files = [p for p in tmp_path.iterdir() if p.name.startswith("f.db")]
    for file in files:
        data = file.read_bytes()
        assert MARK not in data and TEMPLATE[:32] not in data, file.name
    store.close()
