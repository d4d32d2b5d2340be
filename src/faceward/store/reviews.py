"""Repositories for the web console's tables (#6): review steps, enrolled faces' chips, console sessions.

Like :class:`~faceward.store.accounts.AccountStore`, each method is a transaction of its
own bound to its tenant (PostgreSQL's row-level security reads ``app.tenant_id``), and
every query names the tenant too (the guard on SQLite). Sealed columns are opaque bytes here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from faceward.store import schema
from faceward.store.accounts import utc
from faceward.store.sql import SqlStore


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    """A stored review step: keyed hashes to find it by, what it says sealed, its note sealed.

    The clear fields are set only on steps stored before revision 0006 that the service has not
    sealed yet (``step_sealed`` is then None); see :meth:`ReviewStore.clear_steps`.
    """

    id: str
    tenant_id: str
    candidate_ref: str | None
    search_ref: str | None
    subject_ref: str | None
    step_sealed: bytes | None
    note_sealed: bytes
    created_at: datetime
    search_id: str | None = None
    subject_id: str | None = None
    face_id: str | None = None
    reviewer_key_id: str | None = None
    outcome: str | None = None


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
    if values["step_sealed"] is not None:
        values["step_sealed"] = bytes(values["step_sealed"])
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
        self,
        tenant_id: str,
        *,
        candidate: tuple[str, str, str] | None = None,
        search: tuple[str, str] | None = None,
        limit: int = 1000,
    ) -> list[ReviewRecord]:
        """Steps oldest first, of one candidate, one search, or (neither given) the tenant's newest ``limit``.

        ``candidate`` is (candidate ref, search id, subject id) and ``search`` (search ref, search id): the
        ref finds sealed steps, the ids the clear steps stored before revision 0006 not yet sealed.
        """
        r = schema.reviews
        query = select(r).where(r.c.tenant_id == tenant_id)
        if candidate is not None:
            ref, search_id, subject_id = candidate
            query = query.where(or_(r.c.candidate_ref == ref, and_(r.c.search_id == search_id, r.c.subject_id == subject_id)))
        elif search is not None:
            ref, search_id = search
            query = query.where(or_(r.c.search_ref == ref, r.c.search_id == search_id))
        query = query.order_by(r.c.created_at.desc(), r.c.id.desc()).limit(limit)
        with self.store.transaction(tenant_id) as conn:
            rows = conn.execute(query).mappings().all()
        return sorted((_review(row) for row in rows), key=lambda rec: rec.created_at)

    CLEAR_COUNTER = "clear_reviews"  # set by revision 0006: steps it left in clear, until the service seals them

    def clear_steps_pending(self) -> int:
        """How many steps revision 0006 left in clear that no process has sealed yet (one query, no tenant)."""
        q = schema.sequence
        with self.store.transaction() as conn:
            value = conn.execute(select(q.c.value).where(q.c.name == self.CLEAR_COUNTER)).scalar()
        return int(value or 0)

    def clear_steps_sealed(self) -> None:
        """Every tenant's clear steps are sealed: the next start need not look again."""
        q = schema.sequence
        with self.store.transaction() as conn:
            conn.execute(update(q).where(q.c.name == self.CLEAR_COUNTER).values(value=0))

    def clear_steps(self, tenant_id: str, *, limit: int = 500) -> list[ReviewRecord]:
        """Steps stored in clear before revision 0006 and not sealed yet (at most ``limit``)."""
        r = schema.reviews
        with self.store.transaction(tenant_id) as conn:
            rows = conn.execute(
                select(r).where(r.c.tenant_id == tenant_id, r.c.step_sealed.is_(None)).order_by(r.c.id).limit(limit)
            ).mappings().all()
        return [_review(row) for row in rows]

    def replace_steps(self, tenant_id: str, sealed: list[ReviewRecord]) -> None:
        """Put each step's sealed form in place of its clear row, in one transaction.

        Delete and insert, not update: the application role may not change a step (append-only grants).
        On SQLite, ``secure_delete`` zeroes the old row and the WAL is then checkpointed and truncated.
        """
        r = schema.reviews
        with self.store.transaction(tenant_id) as conn:
            for record in sealed:
                conn.execute(delete(r).where(r.c.tenant_id == tenant_id, r.c.id == record.id))
                conn.execute(insert(r).values(**_fields(record)))
        self.store.checkpoint()

    def count_steps_of(self, tenant_id: str, subject_refs: list[str]) -> int:
        """How many steps carry one of these subject refs (the doctor's check that erasures held)."""
        r = schema.reviews
        total = 0
        with self.store.transaction(tenant_id) as conn:
            for start in range(0, len(subject_refs), 500):
                chunk = subject_refs[start:start + 500]
                total += int(conn.execute(select(func.count()).select_from(r).where(
                    r.c.tenant_id == tenant_id, r.c.subject_ref.in_(chunk))).scalar_one())
        return total

    def delete_steps_of(self, tenant_id: str, subject_refs: list[str]) -> int:
        """Delete the steps of these subject refs (subjects erased where no key was open: a restore)."""
        r = schema.reviews
        done = 0
        with self.store.transaction(tenant_id) as conn:
            for start in range(0, len(subject_refs), 500):
                chunk = subject_refs[start:start + 500]
                done += int(conn.execute(delete(r).where(r.c.tenant_id == tenant_id, r.c.subject_ref.in_(chunk))).rowcount or 0)
        if done:
            self.store.checkpoint()
        return done

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
