"""The gallery store on SQLAlchemy Core: SQLite (embedded default) and PostgreSQL (server).

Every tenant-scoped call opens its transaction with the tenant bound, which
PostgreSQL's row-level security policies read (``app.tenant_id``); SQLite has
no RLS, so the ``tenant_id`` predicate in every query is the guard there.

On PostgreSQL the store's connections drop to the application role
(``SET ROLE faceward_app``) as they open: not the tables' owner and without
BYPASSRLS, so the forced policies hold even when the login role is a superuser.
Migrations run before that, as the login role (see :mod:`faceward.store.migrate`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from faceward.store import schema
from faceward.store.engine import APP_ROLE, make_engine
from faceward.store.migrate import current, upgrade
from faceward.store.errors import Conflict, NotFound, StoreUnavailable
from faceward.store.records import FaceRecord, SubjectRecord, TenantRecord
from faceward.store.unit import Unit, current_unit, unit_of_work


class SqlStore:
    """One repository for tenants, subjects and faces. Methods are transactions of their own
    unless called inside :meth:`transaction`."""

    def __init__(self, engine: Engine, *, owner_url: str | None = None) -> None:
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self._owner_url = owner_url

    @classmethod
    def open(cls, url: str, *, create: bool = True, role: str | None = APP_ROLE) -> SqlStore:
        """Open the store at ``url``; ``create`` migrates the schema to head first (as the login role).

        ``role`` is the PostgreSQL role the store then works as; None keeps the
        login role (only for tools that must see past RLS; the service never does).
        """
        store = cls(make_engine(url, role=role), owner_url=url)
        if create:
            store.create_schema()
        return store

    def create_schema(self) -> None:
        """Run the migrations up to head (``alembic upgrade head``), connecting as the login role."""
        with self._guard():
            upgrade(self._owner_url or self.engine.url.render_as_string(hide_password=False))

    def close(self) -> None:
        self.engine.dispose()

    # -- plumbing -------------------------------------------------------------------

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except IntegrityError as exc:
            raise Conflict("the record conflicts with an existing one") from exc
        except OperationalError as exc:
            raise StoreUnavailable(f"the database is unavailable: {exc.orig.__class__.__name__}") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise StoreUnavailable("the database connection was lost") from exc
            raise

    def _unit(self) -> Unit | None:
        return current_unit(self)

    def unit_of_work(self, tenant_id: str | None = None, *, known: TenantRecord | None = None) -> AbstractContextManager[None]:
        """Run an act's store calls in one transaction (see :func:`faceward.store.unit.unit_of_work`)."""
        return unit_of_work(self, tenant_id, known=known)

    @contextmanager
    def joining(self, tenant_id: str, conn: Connection | None) -> Iterator[Connection]:
        """The caller's connection when it passes one, else a transaction of this tenant's own."""
        if conn is not None:
            yield conn
            return
        with self.transaction(tenant_id) as fresh:
            yield fresh

    @contextmanager
    def transaction(self, tenant_id: str | None = None) -> Iterator[Connection]:
        unit = self._unit()
        if unit is not None:  # inside an act's unit of work: join it, bound to this tenant
            with self._guard():
                if self.is_postgres and unit.bound != (tenant_id or ""):
                    unit.conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant_id or ""})
                    unit.bound = tenant_id or ""
                yield unit.conn
            return
        with self._guard(), self.engine.begin() as conn:
            if self.is_postgres:
                conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant_id or ""})
            yield conn

    def _forget_tenant(self, tenant_id: str) -> None:
        unit = self._unit()
        if unit is not None:
            unit.tenants.pop(tenant_id, None)

    def _next_seq(self, conn: Connection) -> int:
        conn.execute(
            update(schema.sequence).where(schema.sequence.c.name == "change").values(value=schema.sequence.c.value + 1)
        )
        return int(conn.execute(select(schema.sequence.c.value).where(schema.sequence.c.name == "change")).scalar_one())

    # -- tenants --------------------------------------------------------------------

    def add_tenant(self, record: TenantRecord) -> None:
        with self.transaction(record.id) as conn:
            conn.execute(insert(schema.tenants).values(**_fields(record)))

    def get_tenant(self, tenant_id: str) -> TenantRecord:
        unit = self._unit()
        if unit is not None and tenant_id in unit.tenants:
            return unit.tenants[tenant_id]
        with self.transaction(tenant_id) as conn:
            row = conn.execute(select(schema.tenants).where(schema.tenants.c.id == tenant_id)).mappings().first()
        if row is None:
            raise NotFound("no such tenant")
        record = TenantRecord(**row)
        if unit is not None:
            unit.tenants[tenant_id] = record
        return record

    def tenant_directory(self) -> list[tuple[str, str, datetime]]:
        """Every tenant's (id, status, created_at), oldest first: the one cross-tenant read.

        On PostgreSQL it goes through ``faceward_tenant_directory()``, a SECURITY
        DEFINER function that returns these three columns and nothing sealed;
        the application role cannot read another tenant's row otherwise.
        """
        with self.transaction() as conn:
            if self.is_postgres:
                rows = conn.execute(text("SELECT id, status, created_at FROM faceward_tenant_directory()")).all()
            else:
                t = schema.tenants
                rows = conn.execute(select(t.c.id, t.c.status, t.c.created_at).order_by(t.c.created_at, t.c.id)).all()
        return [(str(i), str(s), c) for i, s, c in rows]

    def list_tenants(self) -> list[TenantRecord]:
        """Operator use only (the CLI); no API route reaches this. Each row is read under its own tenant."""
        records = []
        directory = self.tenant_directory()
        with self.transaction() as conn:
            for tenant_id, _, _ in directory:
                if self.is_postgres:
                    conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant_id})
                row = conn.execute(select(schema.tenants).where(schema.tenants.c.id == tenant_id)).mappings().first()
                if row is not None:
                    records.append(TenantRecord(**row))
        return records

    def update_tenant(self, tenant_id: str, **values: Any) -> None:
        self._forget_tenant(tenant_id)
        with self.transaction(tenant_id) as conn:
            done = conn.execute(update(schema.tenants).where(schema.tenants.c.id == tenant_id).values(**values))
            if done.rowcount == 0:
                raise NotFound("no such tenant")

    @contextmanager
    def _joined(self, tenant_id: str, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.transaction(tenant_id) as own:
                yield own

    def set_tenant_status(self, tenant_id: str, status: str, *, conn: Connection | None = None) -> None:
        """Suspend or reinstate (with ``conn``, in the caller's transaction, beside its audit entry)."""
        self._forget_tenant(tenant_id)
        with self._joined(tenant_id, conn) as c:
            c.execute(update(schema.tenants).where(schema.tenants.c.id == tenant_id).values(status=status))

    def replace_wrapped_key(self, tenant_id: str, old: bytes, new: bytes, *, conn: Connection | None = None) -> bool:
        """Compare-and-set the tenant's wrapped key; False when it changed meanwhile."""
        self._forget_tenant(tenant_id)
        with self._joined(tenant_id, conn) as c:
            t = schema.tenants
            done = c.execute(update(t).where(t.c.id == tenant_id, t.c.wrapped_key == old).values(wrapped_key=new))
            return done.rowcount == 1

    def schema_revision(self) -> str | None:
        """The revision the database's schema is at; reaching the database at all is the readiness probe."""
        with self._guard(), self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            return current(conn)

    def delete_tenant(self, tenant_id: str) -> None:
        self._forget_tenant(tenant_id)
        with self.transaction(tenant_id) as conn:
            for table in (
                schema.faces, schema.erasures, schema.subjects,
                schema.usage, schema.audit_log, schema.audit_heads, schema.api_keys,
            ):
                conn.execute(delete(table).where(table.c.tenant_id == tenant_id))
            conn.execute(delete(schema.tenants).where(schema.tenants.c.id == tenant_id))

    # -- subjects -------------------------------------------------------------------

    def add_subject(self, record: SubjectRecord) -> None:
        with self.transaction(record.tenant_id) as conn:
            conn.execute(insert(schema.subjects).values(**_fields(record)))

    def get_subject(self, tenant_id: str, subject_id: str) -> SubjectRecord:
        with self.transaction(tenant_id) as conn:
            row = conn.execute(
                select(schema.subjects).where(
                    schema.subjects.c.tenant_id == tenant_id, schema.subjects.c.id == subject_id
                )
            ).mappings().first()
        if row is None:
            raise NotFound("no such subject")
        return SubjectRecord(**row)

    def list_subjects(self, tenant_id: str, *, limit: int = 50, offset: int = 0) -> list[SubjectRecord]:
        with self.transaction(tenant_id) as conn:
            rows = conn.execute(
                select(schema.subjects)
                .where(schema.subjects.c.tenant_id == tenant_id)
                .order_by(schema.subjects.c.created_at, schema.subjects.c.id)
                .limit(limit)
                .offset(offset)
            ).mappings().all()
        return [SubjectRecord(**r) for r in rows]

    def subject_by_ref(self, tenant_id: str, external_ref: str) -> SubjectRecord | None:
        with self.transaction(tenant_id) as conn:
            row = conn.execute(
                select(schema.subjects).where(
                    schema.subjects.c.tenant_id == tenant_id, schema.subjects.c.external_ref == external_ref
                )
            ).mappings().first()
        return SubjectRecord(**row) if row else None

    def subjects_by_id(self, tenant_id: str, subject_ids: list[str]) -> dict[str, SubjectRecord]:
        if not subject_ids:
            return {}
        with self.transaction(tenant_id) as conn:
            rows = conn.execute(
                select(schema.subjects).where(
                    schema.subjects.c.tenant_id == tenant_id, schema.subjects.c.id.in_(subject_ids)
                )
            ).mappings().all()
        return {r["id"]: SubjectRecord(**r) for r in rows}

    def delete_subject(self, tenant_id: str, subject_id: str, *, at: datetime, review_ref: str | None = None) -> list[str]:
        """Erase a subject, its faces and its wrapped key in one transaction; returns the erased face ids.

        ``review_ref`` (the vault's keyed hash of the subject id) also deletes the subject's review steps:
        sealed steps do not name the subject, so the foreign key's cascade no longer reaches them.
        """
        with self.transaction(tenant_id) as conn:
            if review_ref is not None:
                r = schema.reviews
                conn.execute(delete(r).where(r.c.tenant_id == tenant_id, r.c.subject_ref == review_ref))
            face_ids = list(
                conn.execute(
                    select(schema.faces.c.id).where(
                        schema.faces.c.tenant_id == tenant_id, schema.faces.c.subject_id == subject_id
                    )
                ).scalars()
            )
            conn.execute(delete(schema.faces).where(schema.faces.c.tenant_id == tenant_id, schema.faces.c.subject_id == subject_id))
            done = conn.execute(
                delete(schema.subjects).where(schema.subjects.c.tenant_id == tenant_id, schema.subjects.c.id == subject_id)
            )
            if done.rowcount == 0:
                raise NotFound("no such subject")
            seq = self._next_seq(conn)
            conn.execute(insert(schema.erasures).values(seq=seq, tenant_id=tenant_id, subject_id=subject_id, erased_at=at))
        self._flush_wal()
        return face_ids

    def checkpoint(self) -> None:
        """Move SQLite's WAL into the file and truncate it, so replaced or erased rows leave the WAL (a no-op on PostgreSQL)."""
        self._flush_wal()

    def _flush_wal(self) -> None:
        """Move the WAL into the main file and truncate it, so erased pages leave the WAL too (SQLite only).

        Best effort: with readers active the checkpoint is partial and the next one completes it.
        """
        if self.engine.dialect.name != "sqlite":
            return
        with self._guard(), self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def count_subjects(self, tenant_id: str) -> int:
        with self.transaction(tenant_id) as conn:
            return int(
                conn.execute(select(func.count()).select_from(schema.subjects).where(schema.subjects.c.tenant_id == tenant_id)).scalar_one()
            )

    # -- faces ----------------------------------------------------------------------

    def add_face(self, record: FaceRecord) -> FaceRecord:
        """Store a face; fails with :class:`NotFound` if its subject was erased meanwhile."""
        with self.transaction(record.tenant_id) as conn:
            exists = conn.execute(
                select(schema.subjects.c.id).where(
                    schema.subjects.c.tenant_id == record.tenant_id, schema.subjects.c.id == record.subject_id
                )
            ).first()
            if exists is None:
                raise NotFound("no such subject")
            seq = self._next_seq(conn)
            values = _fields(record) | {"seq": seq}
            conn.execute(insert(schema.faces).values(**values))
        return FaceRecord(**values)

    def faces_of(self, tenant_id: str, subject_id: str) -> list[FaceRecord]:
        with self.transaction(tenant_id) as conn:
            rows = conn.execute(
                select(schema.faces)
                .where(schema.faces.c.tenant_id == tenant_id, schema.faces.c.subject_id == subject_id)
                .order_by(schema.faces.c.seq)
            ).mappings().all()
        return [FaceRecord(**r) for r in rows]

    def faces_of_subjects(self, tenant_id: str, subject_ids: list[str]) -> dict[str, list[FaceRecord]]:
        """The faces of each of ``subject_ids`` (one query), in enrollment order."""
        out: dict[str, list[FaceRecord]] = {s: [] for s in subject_ids}
        if not subject_ids:
            return out
        with self.transaction(tenant_id) as conn:
            rows = conn.execute(
                select(schema.faces)
                .where(schema.faces.c.tenant_id == tenant_id, schema.faces.c.subject_id.in_(subject_ids))
                .order_by(schema.faces.c.seq)
            ).mappings().all()
        for row in rows:
            out[row["subject_id"]].append(FaceRecord(**row))
        return out

    def faces_since(self, tenant_id: str, after_seq: int, *, limit: int = 10_000) -> list[FaceRecord]:
        with self.transaction(tenant_id) as conn:
            rows = conn.execute(
                select(schema.faces)
                .where(schema.faces.c.tenant_id == tenant_id, schema.faces.c.seq > after_seq)
                .order_by(schema.faces.c.seq)
                .limit(limit)
            ).mappings().all()
        return [FaceRecord(**r) for r in rows]

    def erasures_since(self, tenant_id: str, after_seq: int) -> list[tuple[int, str]]:
        with self.transaction(tenant_id) as conn:
            rows = conn.execute(
                select(schema.erasures.c.seq, schema.erasures.c.subject_id)
                .where(schema.erasures.c.tenant_id == tenant_id, schema.erasures.c.seq > after_seq)
                .order_by(schema.erasures.c.seq)
            ).all()
        return [(int(s), str(i)) for s, i in rows]

    def current_seq(self) -> int:
        with self.transaction() as conn:
            return int(conn.execute(select(schema.sequence.c.value).where(schema.sequence.c.name == "change")).scalar_one())

    def count_faces_since(self, tenant_id: str, after_seq: int) -> int:
        """Faces of the tenant newer than ``after_seq`` (an index's sync lag)."""
        with self.transaction(tenant_id) as conn:
            return int(conn.execute(
                select(func.count()).select_from(schema.faces)
                .where(schema.faces.c.tenant_id == tenant_id, schema.faces.c.seq > after_seq)
            ).scalar_one())

    def count_faces(self, tenant_id: str) -> int:
        with self.transaction(tenant_id) as conn:
            return int(
                conn.execute(select(func.count()).select_from(schema.faces).where(schema.faces.c.tenant_id == tenant_id)).scalar_one()
            )

    def has_image(self, tenant_id: str, subject_id: str, image_sha256: str) -> bool:
        with self.transaction(tenant_id) as conn:
            return conn.execute(
                select(schema.faces.c.id).where(
                    schema.faces.c.tenant_id == tenant_id,
                    schema.faces.c.subject_id == subject_id,
                    schema.faces.c.image_sha256 == image_sha256,
                )
            ).first() is not None


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


__all__ = ["SqlStore", "make_engine"]
