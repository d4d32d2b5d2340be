"""Reads and repairs for ``faceward doctor``, retention purges and restores, beside :class:`SqlStore`.

Every query is bound to one tenant (PostgreSQL's RLS reads ``app.tenant_id``)
and carries the ``tenant_id`` predicate (SQLite's guard), like the rest of the
store. Nothing here opens a sealed value: the service does that.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

from sqlalchemy import and_, delete, func, or_, select

from faceward.store import schema
from faceward.store.sql import SqlStore


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


class IntegrityStore:
    """Tenant-scoped integrity queries on the gallery's database."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def orphan_faces(self, tenant_id: str) -> list[str]:
        """Ids of the tenant's faces whose subject row is missing (foreign keys make this empty unless broken)."""
        f, s = schema.faces, schema.subjects
        with self.store.transaction(tenant_id) as conn:
            owned = select(s.c.id).where(s.c.tenant_id == tenant_id, s.c.id == f.c.subject_id).exists()
            rows = conn.execute(select(f.c.id).where(f.c.tenant_id == tenant_id, ~owned).order_by(f.c.seq)).scalars()
            return [str(r) for r in rows]

    def duplicate_faces(self, tenant_id: str) -> list[tuple[str, str, str, int]]:
        """``(subject_id, image_sha256, model_id, count)`` for every image stored more than once for one subject
        and model (a model migration keeps one template per model of the same image, which is no duplicate)."""
        f = schema.faces
        with self.store.transaction(tenant_id) as conn:
            rows = conn.execute(
                select(f.c.subject_id, f.c.image_sha256, f.c.model_id, func.count())
                .where(f.c.tenant_id == tenant_id)
                .group_by(f.c.subject_id, f.c.image_sha256, f.c.model_id)
                .having(func.count() > 1)
            ).all()
        return [(str(a), str(b), str(m), int(c)) for a, b, m, c in rows]

    def face_ids_of_duplicates(self, tenant_id: str, subject_id: str, image_sha256: str, model_id: str) -> list[str]:
        """The ids of one (subject, image, model)'s faces, oldest first (repair keeps the first)."""
        f = schema.faces
        with self.store.transaction(tenant_id) as conn:
            rows = conn.execute(
                select(f.c.id).where(
                    f.c.tenant_id == tenant_id, f.c.subject_id == subject_id, f.c.image_sha256 == image_sha256,
                    f.c.model_id == model_id,
                ).order_by(f.c.seq)
            ).scalars()
            return [str(r) for r in rows]

    def delete_faces(self, tenant_id: str, face_ids: list[str]) -> int:
        """Remove faces by id (repair only); the in-memory indexes must then be rebuilt."""
        if not face_ids:
            return 0
        f = schema.faces
        with self.store.transaction(tenant_id) as conn:
            done = conn.execute(delete(f).where(f.c.tenant_id == tenant_id, f.c.id.in_(face_ids)))
            return int(done.rowcount or 0)

    def subject_keys(self, tenant_id: str, *, batch: int = 1000) -> Iterator[list[tuple[str, bytes]]]:
        """``(subject_id, wrapped_key)`` of every subject of the tenant, in batches."""
        s = schema.subjects
        after = ""
        while True:
            with self.store.transaction(tenant_id) as conn:
                rows = conn.execute(
                    select(s.c.id, s.c.wrapped_key)
                    .where(s.c.tenant_id == tenant_id, s.c.id > after)
                    .order_by(s.c.id)
                    .limit(batch)
                ).all()
            if not rows:
                return
            yield [(str(i), bytes(k)) for i, k in rows]
            after = str(rows[-1][0])

    def subject_ids(self, tenant_id: str, *, batch: int = 5000) -> Iterator[list[str]]:
        """Every subject id of the tenant, in batches (the erasure ledger's candidates, to be hashed)."""
        s = schema.subjects
        after = ""
        while True:
            with self.store.transaction(tenant_id) as conn:
                rows = list(conn.execute(
                    select(s.c.id).where(s.c.tenant_id == tenant_id, s.c.id > after).order_by(s.c.id).limit(batch)
                ).scalars())
            if not rows:
                return
            yield [str(r) for r in rows]
            after = str(rows[-1])

    def subjects_due(self, tenant_id: str, *, now: datetime, created_before: datetime | None) -> list[tuple[str, str]]:
        """``(subject_id, reason)`` of subjects whose consent expired by ``now`` or made before ``created_before``."""
        s = schema.subjects
        expired = and_(s.c.consent_expires_at.is_not(None), s.c.consent_expires_at <= _utc(now))
        clause = or_(expired, s.c.created_at < _utc(created_before)) if created_before is not None else expired
        with self.store.transaction(tenant_id) as conn:
            rows = conn.execute(
                select(s.c.id, s.c.consent_expires_at, s.c.created_at)
                .where(s.c.tenant_id == tenant_id, clause)
                .order_by(s.c.created_at, s.c.id)
            ).all()
        out = []
        for subject_id, expires, _created in rows:
            reason = "consent_expired" if expires is not None and _utc(expires) <= _utc(now) else "retention"
            out.append((str(subject_id), reason))
        return out

    def present_subjects(self, tenant_id: str, subject_ids: list[str]) -> set[str]:
        """Which of ``subject_ids`` the tenant still holds."""
        s = schema.subjects
        found: set[str] = set()
        for start in range(0, len(subject_ids), 500):
            chunk = subject_ids[start : start + 500]
            with self.store.transaction(tenant_id) as conn:
                found.update(str(r) for r in conn.execute(
                    select(s.c.id).where(s.c.tenant_id == tenant_id, s.c.id.in_(chunk))
                ).scalars())
        return found

    def tenant_rows(self, tenant_id: str) -> int:
        """Subjects plus faces still stored for a tenant (a shredded tenant should have none)."""
        with self.store.transaction(tenant_id) as conn:
            total = 0
            for table in (schema.subjects, schema.faces):
                total += int(conn.execute(
                    select(func.count()).select_from(table).where(table.c.tenant_id == tenant_id)
                ).scalar_one())
            return total


__all__ = ["IntegrityStore"]
