"""Repositories for API keys, the audit chain and usage counters, beside :class:`SqlStore`.

Each method is a transaction of its own, bound to its tenant (PostgreSQL's RLS
reads ``app.tenant_id``), unless handed a connection from an open
:meth:`SqlStore.transaction`, so that an act and its audit entry commit together.

Counters and the audit chain head are read-modify-write under a lock taken by
the transaction's first statement: ``INSERT .. ON CONFLICT DO NOTHING`` takes
SQLite's write lock (so the read that follows sees the latest value) and
``SELECT .. FOR UPDATE`` the row lock on PostgreSQL. Concurrent workers thus
never hand out the same audit sequence number or lose a count.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import Connection, Table, delete, func, insert, select, text, update

from faceward.store import schema
from faceward.store.errors import NotFound
from faceward.store.records import ApiKeyRecord, AuditRecord, UsageRecord
from faceward.store.sql import SqlStore, _fields


def utc(moment: datetime) -> datetime:
    """Aware UTC (SQLite hands back naive datetimes; the store only ever writes UTC)."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)


def _key(row: Any) -> ApiKeyRecord:
    values = dict(row)
    for name in ("created_at", "expires_at", "revoked_at", "last_used_at"):
        values[name] = _utc_or_none(values[name])
    values["secret_hash"] = bytes(values["secret_hash"])
    return ApiKeyRecord(**values)


def _insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> None:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    conn.execute(dialect_insert(table).values(**values).on_conflict_do_nothing())


class AccountStore:
    """API keys, audit entries and usage counters of every tenant, in the gallery's database."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def _tx(self, tenant_id: str, conn: Connection | None) -> AbstractContextManager[Connection]:
        return self.store.joining(tenant_id, conn)

    # -- API keys -------------------------------------------------------------------

    def add_key(self, record: ApiKeyRecord, *, conn: Connection | None = None) -> None:
        with self._tx(record.tenant_id, conn) as c:
            c.execute(insert(schema.api_keys).values(**_fields(record)))

    def key_for_authentication(self, key_id: str) -> ApiKeyRecord | None:
        """The key with this id, whichever tenant holds it: the one read made before a tenant is known.

        On PostgreSQL the ``api_keys_lookup`` policy shows exactly the row whose
        id the transaction names in ``app.key_id``, and no other.
        """
        with self.store.transaction() as conn:
            if self.store.is_postgres:
                conn.execute(text("SELECT set_config('app.key_id', :k, true)"), {"k": key_id})
            row = conn.execute(select(schema.api_keys).where(schema.api_keys.c.id == key_id)).mappings().first()
        return _key(row) if row else None

    def get_key(self, tenant_id: str, key_id: str) -> ApiKeyRecord:
        with self.store.transaction(tenant_id) as conn:
            row = conn.execute(
                select(schema.api_keys).where(schema.api_keys.c.tenant_id == tenant_id, schema.api_keys.c.id == key_id)
            ).mappings().first()
        if row is None:
            raise NotFound("no such API key")
        return _key(row)

    def list_keys(self, tenant_id: str, *, conn: Connection | None = None, lock: bool = False) -> list[ApiKeyRecord]:
        """The tenant's keys, oldest first; ``lock`` holds them (FOR UPDATE) until ``conn`` commits."""
        query = (
            select(schema.api_keys)
            .where(schema.api_keys.c.tenant_id == tenant_id)
            .order_by(schema.api_keys.c.created_at, schema.api_keys.c.id)
        )
        with self._tx(tenant_id, conn) as c:
            rows = c.execute(query.with_for_update() if lock else query).mappings().all()
        return [_key(r) for r in rows]

    def count_keys(self, tenant_id: str) -> int:
        with self.store.transaction(tenant_id) as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(schema.api_keys).where(schema.api_keys.c.tenant_id == tenant_id)
                ).scalar_one()
            )

    def revoke_key(self, tenant_id: str, key_id: str, *, at: datetime, conn: Connection | None = None) -> bool:
        """Mark the key revoked; False if it already was. :class:`NotFound` if the tenant has no such key."""
        keys = schema.api_keys
        with self._tx(tenant_id, conn) as c:
            revoked = c.execute(
                select(keys.c.revoked_at).where(keys.c.tenant_id == tenant_id, keys.c.id == key_id).with_for_update()
            ).first()
            if revoked is None:
                raise NotFound("no such API key")
            if revoked[0] is not None:
                return False
            c.execute(update(keys).where(keys.c.tenant_id == tenant_id, keys.c.id == key_id).values(revoked_at=at))
        return True

    def touch_key(self, tenant_id: str, key_id: str, *, at: datetime) -> None:
        keys = schema.api_keys
        with self.store.transaction(tenant_id) as conn:
            conn.execute(update(keys).where(keys.c.tenant_id == tenant_id, keys.c.id == key_id).values(last_used_at=at))

    # -- audit chain ----------------------------------------------------------------

    def append_audit(
        self, tenant_id: str, build: Callable[[int, bytes], AuditRecord], *, conn: Connection | None = None
    ) -> AuditRecord:
        """Append ``build(seq, previous_mac)`` as the tenant's next entry, holding the chain head's lock."""
        heads = schema.audit_heads
        with self._tx(tenant_id, conn) as c:
            _insert_ignore(c, heads, {"tenant_id": tenant_id, "seq": 0, "mac": b""})
            head = c.execute(select(heads.c.seq, heads.c.mac).where(heads.c.tenant_id == tenant_id).with_for_update()).one()
            record = build(int(head.seq) + 1, bytes(head.mac))
            c.execute(insert(schema.audit_log).values(**_fields(record)))
            c.execute(update(heads).where(heads.c.tenant_id == tenant_id).values(seq=record.seq, mac=record.mac))
        return record

    def audit_head(self, tenant_id: str) -> tuple[int, bytes] | None:
        heads = schema.audit_heads
        with self.store.transaction(tenant_id) as conn:
            row = conn.execute(select(heads.c.seq, heads.c.mac).where(heads.c.tenant_id == tenant_id)).first()
        return (int(row.seq), bytes(row.mac)) if row else None

    def audit_rows(
        self,
        tenant_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[AuditRecord]:
        """Entries in seq order (or reverse), ``since <= at < until``, ``after_seq < seq < before_seq``."""
        log = schema.audit_log
        query = select(log).where(log.c.tenant_id == tenant_id)
        if since is not None:
            query = query.where(log.c.at >= utc(since))
        if until is not None:
            query = query.where(log.c.at < utc(until))
        if after_seq is not None:
            query = query.where(log.c.seq > after_seq)
        if before_seq is not None:
            query = query.where(log.c.seq < before_seq)
        query = query.order_by(log.c.seq.desc() if newest_first else log.c.seq).limit(limit)
        with self.store.transaction(tenant_id) as conn:
            rows = conn.execute(query).mappings().all()
        return [
            AuditRecord(r["tenant_id"], int(r["seq"]), utc(r["at"]), bytes(r["payload_sealed"]), bytes(r["mac"]))
            for r in rows
        ]

    # -- usage counters -------------------------------------------------------------

    def bump_usage(
        self,
        tenant_id: str,
        bucket: str,
        day: date,
        *,
        owner_sealed: bytes,
        zero_sealed: bytes,
        step: Callable[[bytes], tuple[int, bytes]],
    ) -> int:
        """Replace the sealed count of (bucket, day) with ``step(sealed)``'s, under the row's lock; its new count."""
        usage = schema.usage
        where = (usage.c.tenant_id == tenant_id, usage.c.bucket == bucket, usage.c.day == day)
        with self.store.transaction(tenant_id) as conn:
            _insert_ignore(
                conn, usage,
                {"tenant_id": tenant_id, "bucket": bucket, "day": day, "owner_sealed": owner_sealed, "count_sealed": zero_sealed},
            )
            current = conn.execute(select(usage.c.count_sealed).where(*where).with_for_update()).scalar_one()
            count, sealed = step(bytes(current))
            conn.execute(update(usage).where(*where).values(count_sealed=sealed))
        return count

    def usage_rows(self, tenant_id: str) -> list[UsageRecord]:
        usage = schema.usage
        with self.store.transaction(tenant_id) as conn:
            rows = conn.execute(
                select(usage).where(usage.c.tenant_id == tenant_id).order_by(usage.c.day, usage.c.bucket)
            ).mappings().all()
        return [
            UsageRecord(r["tenant_id"], r["bucket"], r["day"], bytes(r["owner_sealed"]), bytes(r["count_sealed"]))
            for r in rows
        ]

    def forget_tenant(self, tenant_id: str) -> None:
        """Delete the tenant's keys, audit chain and counters (part of deleting the tenant)."""
        with self.store.transaction(tenant_id) as conn:
            for table in (schema.usage, schema.audit_log, schema.audit_heads, schema.api_keys):
                conn.execute(delete(table).where(table.c.tenant_id == tenant_id))


__all__ = ["AccountStore", "utc"]
