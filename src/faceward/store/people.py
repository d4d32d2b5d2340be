"""Repositories for OpenID Connect sign-in (decision 021): provider connections, pending sign-ins, people, sessions.

Each method is a transaction of its own bound to its tenant (PostgreSQL's row-level security reads
``app.tenant_id``), or joins the caller's with ``conn``; every query names the tenant too. Sealed
columns are opaque bytes here. :meth:`OidcStore.tenant_of_login` is the one read made before a
tenant is known: on PostgreSQL the ``oidc_login_lookup`` policy shows exactly the connection whose
login id the transaction names in ``app.login_id``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from faceward.errors import Conflict

from faceward.store import schema
from faceward.store.accounts import utc
from faceward.store.sql import SqlStore


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    tenant_id: str
    login_id: str
    config_sealed: bytes
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PendingRecord:
    id: str
    tenant_id: str
    nonce: str
    verifier: str
    binding: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PersonRecord:
    id: str
    tenant_id: str
    ident: str
    profile_sealed: bytes
    created_at: datetime
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class PersonSessionRecord:
    id: str
    tenant_id: str
    person_id: str
    created_at: datetime
    expires_at: datetime
    seen_at: datetime


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


def _row(cls: Any, row: Any) -> Any:
    values = dict(row)
    for name, value in values.items():
        if isinstance(value, datetime):
            values[name] = utc(value)
        elif isinstance(value, memoryview):
            values[name] = bytes(value)
    return cls(**values)


class OidcStore:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def _tx(self, tenant_id: str, conn: Connection | None) -> AbstractContextManager[Connection]:
        return self.store.joining(tenant_id, conn)

    # -- connections ---------------------------------------------------------------------

    def tenant_of_login(self, login_id: str) -> str | None:
        with self.store.transaction() as conn:
            if self.store.is_postgres:
                conn.execute(text("SELECT set_config('app.login_id', :l, true)"), {"l": login_id})
            c = schema.oidc_connections
            return conn.execute(select(c.c.tenant_id).where(c.c.login_id == login_id)).scalar()

    def connection(self, tenant_id: str) -> ConnectionRecord | None:
        c = schema.oidc_connections
        with self.store.transaction(tenant_id) as conn:
            row = conn.execute(select(c).where(c.c.tenant_id == tenant_id)).mappings().first()
        return _row(ConnectionRecord, row) if row else None

    def put_connection(self, record: ConnectionRecord, *, conn: Connection | None = None) -> None:
        c = schema.oidc_connections
        with self._tx(record.tenant_id, conn) as tx:
            tx.execute(delete(c).where(c.c.tenant_id == record.tenant_id))
            tx.execute(insert(c).values(**_fields(record)))

    def remove_connection(self, tenant_id: str, *, conn: Connection | None = None) -> bool:
        """Forget the connection and end every person's session (their role came from it)."""
        c, s = schema.oidc_connections, schema.person_sessions
        with self._tx(tenant_id, conn) as tx:
            tx.execute(delete(s).where(s.c.tenant_id == tenant_id))
            return bool(tx.execute(delete(c).where(c.c.tenant_id == tenant_id)).rowcount)

    # -- pending sign-ins ----------------------------------------------------------------

    def add_pending(self, record: PendingRecord) -> None:
        p = schema.oidc_pending
        with self.store.transaction(record.tenant_id) as conn:
            conn.execute(delete(p).where(p.c.tenant_id == record.tenant_id, p.c.expires_at <= record.created_at))
            conn.execute(insert(p).values(**_fields(record)))

    def take_pending(self, tenant_id: str, pending_id: str) -> PendingRecord | None:
        """The pending sign-in, deleted in the same transaction: a second take of the same state finds nothing."""
        p = schema.oidc_pending
        with self.store.transaction(tenant_id) as conn:
            row = conn.execute(select(p).where(p.c.tenant_id == tenant_id, p.c.id == pending_id)).mappings().first()
            if row is None:
                return None
            if not conn.execute(delete(p).where(p.c.tenant_id == tenant_id, p.c.id == pending_id)).rowcount:
                return None  # a concurrent callback took it first
        return _row(PendingRecord, row)  # type: ignore[no-any-return]

    # -- people ----------------------------------------------------------------------------

    def person_by_ident(self, tenant_id: str, ident: str) -> PersonRecord | None:
        p = schema.people
        with self.store.transaction(tenant_id) as conn:
            row = conn.execute(select(p).where(p.c.tenant_id == tenant_id, p.c.ident == ident)).mappings().first()
        return _row(PersonRecord, row) if row else None

    def person(self, tenant_id: str, person_id: str) -> PersonRecord | None:
        p = schema.people
        with self.store.transaction(tenant_id) as conn:
            row = conn.execute(select(p).where(p.c.tenant_id == tenant_id, p.c.id == person_id)).mappings().first()
        return _row(PersonRecord, row) if row else None

    def people_by_ident(self, tenant_id: str, idents: list[str]) -> dict[str, PersonRecord]:
        if not idents:
            return {}
        p = schema.people
        with self.store.transaction(tenant_id) as conn:
            rows = conn.execute(select(p).where(p.c.tenant_id == tenant_id, p.c.ident.in_(idents))).mappings().all()
        return {r["ident"]: _row(PersonRecord, r) for r in rows}

    def add_person(self, record: PersonRecord) -> None:
        """Raises :class:`Conflict` when the tenant already has a person with this ident (a racing first sign-in)."""
        try:
            with self.store.transaction(record.tenant_id) as tx:
                tx.execute(insert(schema.people).values(**_fields(record)))
        except IntegrityError:
            raise Conflict("this person was recorded by another sign-in at the same moment") from None

    def update_person(self, tenant_id: str, person_id: str, *, profile_sealed: bytes, seen_at: datetime,
                      conn: Connection | None = None) -> None:
        p = schema.people
        with self._tx(tenant_id, conn) as tx:
            tx.execute(update(p).where(p.c.tenant_id == tenant_id, p.c.id == person_id)
                       .values(profile_sealed=profile_sealed, seen_at=seen_at))

    # -- sessions --------------------------------------------------------------------------

    def add_session(self, record: PersonSessionRecord, *, conn: Connection | None = None) -> None:
        s = schema.person_sessions
        with self._tx(record.tenant_id, conn) as tx:
            tx.execute(delete(s).where(s.c.tenant_id == record.tenant_id, s.c.expires_at <= record.created_at))
            tx.execute(insert(s).values(**_fields(record)))

    def session(self, tenant_id: str, session_id: str) -> PersonSessionRecord | None:
        s = schema.person_sessions
        with self.store.transaction(tenant_id) as conn:
            row = conn.execute(select(s).where(s.c.tenant_id == tenant_id, s.c.id == session_id)).mappings().first()
        return _row(PersonSessionRecord, row) if row else None

    def touch_session(self, tenant_id: str, session_id: str, *, at: datetime) -> None:
        s = schema.person_sessions
        with self.store.transaction(tenant_id) as conn:
            conn.execute(update(s).where(s.c.tenant_id == tenant_id, s.c.id == session_id).values(seen_at=at))

    def remove_session(self, tenant_id: str, session_id: str) -> bool:
        s = schema.person_sessions
        with self.store.transaction(tenant_id) as conn:
            return bool(conn.execute(delete(s).where(s.c.tenant_id == tenant_id, s.c.id == session_id)).rowcount)


__all__ = ["ConnectionRecord", "OidcStore", "PendingRecord", "PersonRecord", "PersonSessionRecord"]
