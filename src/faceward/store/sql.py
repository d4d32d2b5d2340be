"""The gallery store on SQLAlchemy Core: SQLite (embedded default) and PostgreSQL (server).

Every tenant-scoped call opens its transaction with the tenant bound, which
PostgreSQL's row-level security policies read (``app.tenant_id``); SQLite has
no RLS, so the ``tenant_id`` predicate in every query is the guard there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, delete, event, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from faceward.store import schema
from faceward.store.errors import Conflict, NotFound, StoreUnavailable
from faceward.store.records import FaceRecord, SubjectRecord, TenantRecord


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


class SqlStore:
    """One repository for tenants, subjects and faces. Methods are transactions of their own
    unless called inside :meth:`transaction`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> SqlStore:
        store = cls(make_engine(url))
        if create:
            store.create_schema()
        return store

    def create_schema(self) -> None:
        with self._guard():
            schema.metadata.create_all(self.engine)
            with self.engine.begin() as conn:
                if conn.execute(select(schema.sequence.c.value).where(schema.sequence.c.name == "change")).first() is None:
                    conn.execute(insert(schema.sequence).values(name="change", value=0))

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

    @contextmanager
    def transaction(self, tenant_id: str | None = None) -> Iterator[Connection]:
        with self._guard(), self.engine.begin() as conn:
            if self.is_postgres:
                conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant_id or ""})
            yield conn

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
        with self.transaction(tenant_id) as conn:
            row = conn.execute(select(schema.tenants).where(schema.tenants.c.id == tenant_id)).mappings().first()
        if row is None:
            raise NotFound("no such tenant")
        return TenantRecord(**row)

    def list_tenants(self) -> list[TenantRecord]:
        """Operator use only (the CLI); no API route reaches this."""
        with self.transaction() as conn:
            rows = conn.execute(select(schema.tenants).order_by(schema.tenants.c.created_at)).mappings().all()
        return [TenantRecord(**r) for r in rows]

    def update_tenant(self, tenant_id: str, **values: Any) -> None:
        with self.transaction(tenant_id) as conn:
            done = conn.execute(update(schema.tenants).where(schema.tenants.c.id == tenant_id).values(**values))
            if done.rowcount == 0:
                raise NotFound("no such tenant")

    def delete_tenant(self, tenant_id: str) -> None:
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

    def delete_subject(self, tenant_id: str, subject_id: str, *, at: datetime) -> list[str]:
        """Erase a subject, its faces and its wrapped key in one transaction; returns the erased face ids."""
        with self.transaction(tenant_id) as conn:
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
        return face_ids

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
