"""Repositories for the web console's tables (#6): review steps, enrolled faces' chips, console sessions.

Like :class:`~faceward.store.accounts.AccountStore`, each method is a transaction of its
own bound to its tenant (PostgreSQL's row-level security reads ``app.tenant_id``), and
every query names the tenant too (the guard on SQLite). Sealed columns are opaque bytes here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from faceward.store import schema
from faceward.store.accounts import utc
from faceward.store.sql import SqlStore


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    id: str
    tenant_id: str
    search_id: str
    subject_id: str
    face_id: str | None
    reviewer_key_id: str
    outcome: str
    note_sealed: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ChipRecord:
    face_id: str
    tenant_id: str
    subject_id: str
    chip_sealed: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    tenant_id: str
    key_id: str
    created_at: datetime
    expires_at: datetime
    seen_at: datetime


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


def _review(row: Any) -> ReviewRecord:
    values = dict(row)
    values["created_at"] = utc(values["created_at"])
    values["note_sealed"] = bytes(values["note_sealed"])
    return ReviewRecord(**values)


def _session(row: Any) -> SessionRecord:
    values = dict(row)
    for name in ("created_at", "expires_at", "seen_at"):
        values[name] = utc(values[name])
    return SessionRecord(**values)


class ReviewStore:
    """Review steps and face chips of every tenant, in the gallery's database."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    # -- reviews ------------------------------------------------------------------------

    def add_review(self, record: ReviewRecord, *, conn: Connection | None = None) -> None:
        """Store a step; with ``conn`` (from :meth:`SqlStore.transaction`) it commits with the caller's audit entry."""
        if conn is not None:
            conn.execute(insert(schema.reviews).values(**_fields(record)))
            return
        with self.store.transaction(record.tenant_id) as fresh:
            fresh.execute(insert(schema.reviews).values(**_fields(record)))

    def reviews(
        self, tenant_id: str, *, search_id: str | None = None, subject_id: str | None = None, limit: int = 1000
    ) -> list[ReviewRecord]:
        """Steps oldest first, of one candidate, one search, or (neither given) the tenant's newest ``limit``."""
        r = schema.reviews
        query = select(r).where(r.c.tenant_id == tenant_id)
        if search_id is not None:
            query = query.where(r.c.search_id == search_id)
        if subject_id is not None:
            query = query.where(r.c.subject_id == subject_id)
        query = query.order_by(r.c.created_at.desc(), r.c.id.desc()).limit(limit)
        with self.store.transaction(tenant_id) as conn:
            rows = conn.execute(query).mappings().all()
        return sorted((_review(row) for row in rows), key=lambda rec: rec.created_at)

    # -- face chips ---------------------------------------------------------------------

    def add_chip(self, record: ChipRecord) -> None:
        with self.store.transaction(record.tenant_id) as conn:
            conn.execute(insert(schema.face_chips).values(**_fields(record)))

    def chip(self, tenant_id: str, face_id: str) -> ChipRecord | None:
        c = schema.face_chips
        with self.store.transaction(tenant_id) as conn:
            row = conn.execute(select(c).where(c.c.tenant_id == tenant_id, c.c.face_id == face_id)).mappings().first()
        if row is None:
            return None
        values = dict(row)
        values["chip_sealed"] = bytes(values["chip_sealed"])
        return ChipRecord(**values)

    def delete_chips(self, tenant_id: str) -> int:
        """Remove every chip of the tenant; returns how many there were."""
        c = schema.face_chips
        with self.store.transaction(tenant_id) as conn:
            return int(conn.execute(delete(c).where(c.c.tenant_id == tenant_id)).rowcount or 0)


class SessionStore:
    """Console sessions: looked up by the hash of the cookie's secret, within the cookie's tenant."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def add(self, record: SessionRecord) -> None:
        s = schema.console_sessions
        with self.store.transaction(record.tenant_id) as conn:
            conn.execute(delete(s).where(s.c.tenant_id == record.tenant_id, s.c.expires_at <= record.created_at))
            conn.execute(insert(s).values(**_fields(record)))

    def get(self, tenant_id: str, session_id: str) -> SessionRecord | None:
        s = schema.console_sessions
        with self.store.transaction(tenant_id) as conn:
            row = conn.execute(select(s).where(s.c.tenant_id == tenant_id, s.c.id == session_id)).mappings().first()
        return _session(row) if row else None

    def touch(self, tenant_id: str, session_id: str, *, at: datetime) -> None:
        s = schema.console_sessions
        with self.store.transaction(tenant_id) as conn:
            conn.execute(update(s).where(s.c.tenant_id == tenant_id, s.c.id == session_id).values(seen_at=at))

    def remove(self, tenant_id: str, session_id: str) -> bool:
        s = schema.console_sessions
        with self.store.transaction(tenant_id) as conn:
            return bool(conn.execute(delete(s).where(s.c.tenant_id == tenant_id, s.c.id == session_id)).rowcount)


__all__ = ["ChipRecord", "ReviewRecord", "ReviewStore", "SessionRecord", "SessionStore"]
