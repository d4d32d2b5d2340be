"""Encrypted, consistent, online backups of the store, and restores that re-apply every erasure.

``backup`` takes a consistent copy while the service keeps running: SQLite's
``VACUUM INTO`` (one read transaction, so one point in time, and no free pages
that could still hold deleted rows), or ``pg_dump --format=custom`` (one
snapshot) for PostgreSQL. The copy is then sealed into one file that only the
master key opens (:mod:`faceward.security.sealed_files`: chunked AES-256-GCM
under a fresh backup key wrapped by the master key).

``restore`` decrypts into a fresh home (or an empty PostgreSQL database),
migrates it to the current schema, and then applies the erasure ledger
(:mod:`faceward.store.ledger`) before anything else can read it: every
subject or tenant erased since the backup was taken is erased again. The
backup header records the ledger's head at backup time; a ledger that does not
extend it (lost, or rolled back) stops the restore, since restoring without it
would bring erased people back. See ``docs/decisions/007-erasure-and-backups.md``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from faceward import __version__
from faceward.durability import fsync_dir
from faceward.security.kms import TenantKeyWrapper
from faceward.security.sealed_files import FORMAT, BackupError, open_file, read_header, seal_file
from faceward.store.ledger import Erasure, ErasureLedger, LedgerHead
from faceward.store import SqlStore



@dataclass(frozen=True)
class BackupInfo:
    path: Path
    backup_id: str
    database: str
    created_at: datetime
    bytes: int
    ledger: LedgerHead
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path), "backup_id": self.backup_id, "database": self.database,
            "created_at": self.created_at.isoformat(), "bytes": self.bytes, "ledger": self.ledger.as_dict(),
        }


@dataclass(frozen=True)
class RestoreReport:
    backup_id: str
    database: str
    created_at: datetime
    subjects_erased_again: list[tuple[str, str]]  # (tenant id, subject id)
    tenants_erased_again: list[str]
    ledger_entries: int
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id, "database": self.database, "created_at": self.created_at.isoformat(),
            "subjects_erased_again": len(self.subjects_erased_again),
            "tenants_erased_again": len(self.tenants_erased_again), "ledger_entries": self.ledger_entries,
        }


def sqlite_path(url: str) -> Path:
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _libpq(url: str) -> tuple[str, str | None]:
    """A libpq URI for pg_dump/psql and the schema named by ``options=-csearch_path=...``, if any."""
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    query = parse_qs(urlsplit(plain).query)
    schema = None
    for option in query.get("options", []):
        for part in unquote(option).split():
            if part.startswith("-csearch_path="):
                schema = part.split("=", 1)[1].split(",")[0].strip() or None
    return plain, schema


def _run(args: list[str], what: str) -> None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    except FileNotFoundError:
        raise BackupError(f"{args[0]} is not installed; it is needed to {what}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise BackupError(f"{args[0]} failed to {what}: {' / '.join(tail)}")


def _dump(url: str, target: Path) -> str:
    if url.startswith("sqlite"):
        source = sqlite_path(url)
        if not source.is_file():
            raise BackupError(f"no database at {source}")
        conn = sqlite3.connect(source, timeout=30)
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("VACUUM INTO ?", (str(target),))
        except sqlite3.Error as exc:
            raise BackupError(f"SQLite could not copy the database: {exc}") from exc
        finally:
            conn.close()
        return "sqlite"
    if url.startswith("postgresql"):
        uri, schema = _libpq(url)
        args = ["pg_dump", "--format=custom", "--no-owner", f"--file={target}", f"--dbname={uri}"]
        if schema:
            args.append(f"--schema={schema}")
        _run(args, "dump the database")
        return "postgresql"
    raise BackupError(f"cannot back up a database of this kind: {url.split(':', 1)[0]}")


def _restore_db(kind: str, dump: Path, url: str) -> None:
    if kind == "sqlite":
        if not url.startswith("sqlite"):
            raise BackupError("this backup is of a SQLite store; FACEWARD_DATABASE_URL names another kind")
        target = sqlite_path(url)
        if target.exists() and _sqlite_has_tenants(target):
            raise BackupError(f"{target} already holds data: restore into a fresh home")
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        staged = target.with_name(f".{target.name}.restore")
        shutil.copyfile(dump, staged)
        os.chmod(staged, 0o600)
        with staged.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(staged, target)
        fsync_dir(target.parent)
        return
    if not url.startswith("postgresql"):
        raise BackupError("this backup is of a PostgreSQL store; FACEWARD_DATABASE_URL names another kind")
    if _pg_has_tenants(url):
        raise BackupError("the target PostgreSQL database already holds a faceward store: restore into an empty one")
    uri, _ = _libpq(url)
    _ensure_app_role(url)
    _run(["pg_restore", "--exit-on-error", "--single-transaction", "--no-owner", f"--dbname={uri}", str(dump)],
         "restore the database")


def _sqlite_has_tenants(path: Path) -> bool:
    conn = sqlite3.connect(path)
    try:
        return cast(int, conn.execute("SELECT count(*) FROM tenants").fetchone()[0]) > 0
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def _pg_engine(url: str) -> Any:
    from sqlalchemy.pool import NullPool

    from faceward.store.sql import make_engine

    return make_engine(url, poolclass=NullPool)


def _pg_has_tenants(url: str) -> bool:
    from sqlalchemy import text

    engine = _pg_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text("SELECT to_regclass('tenants') IS NOT NULL")).scalar())
    finally:
        engine.dispose()


def _ensure_app_role(url: str) -> None:
    """The grants in the dump name ``faceward_app``; create the role (as migration 0003 does) if missing."""
    from sqlalchemy import text

    from faceward.store.engine import APP_ROLE

    engine = _pg_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(
                f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN "
                f"CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS; END IF; "
                "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            ))
    finally:
        engine.dispose()


def _schema_revision(url: str) -> str | None:
    from sqlalchemy import inspect, text

    from faceward.store.sql import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            return None if value is None else str(value)
    except Exception:
        return None
    finally:
        engine.dispose()


# -- the use cases --------------------------------------------------------------------


@contextmanager
def _scratch(near: Path) -> Iterator[Path]:
    """A private (0700) scratch folder beside ``near`` for the clear copy; removed afterwards."""
    near.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".faceward-backup-", dir=near))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def backup(
    url: str, keyring: TenantKeyWrapper, ledger: ErasureLedger, target: Path, *, scratch: Path,
    extra: dict[str, Any] | None = None, now: datetime | None = None,
) -> BackupInfo:
    """Back up the store at ``url`` to ``target``, sealed; ``scratch`` is where the clear copy briefly lives.

    The ledger is created (empty) if missing, so that a later restore can tell
    "no erasure yet" from "the ledger was lost".
    """
    if not ledger.exists():
        ledger.path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(ledger.path, os.O_WRONLY | os.O_CREAT, 0o600))
    head = ledger.head()
    moment = now or datetime.now(timezone.utc)
    backup_id = secrets.token_hex(16)
    with _scratch(scratch) as folder:
        dump = folder / "dump"
        kind = _dump(url, dump)
        header = {
            "format": FORMAT, "backup_id": backup_id, "database": kind, "created_at": moment.isoformat(),
            "schema_revision": _schema_revision(url), "faceward": __version__,
            "ledger": head.as_dict(), "extra": extra or {},
        }
        size = seal_file(dump, target, keyring, header)
    return BackupInfo(target, backup_id, kind, moment, size, head, extra or {})


def restore(
    source: Path, url: str, keyring: TenantKeyWrapper, ledger: ErasureLedger, *, scratch: Path,
    allow_missing_ledger: bool = False,
) -> RestoreReport:
    """Restore the backup at ``source`` into the empty store at ``url``, then re-apply every erasure.

    Refuses (:class:`BackupError` / :class:`~faceward.store.ledger.LedgerError`)
    when the master key does not open it, the target holds data, or the ledger
    is missing or does not extend the one the backup saw; ``allow_missing_ledger``
    accepts a lost ledger knowingly (erasures made after the backup then come back).
    """
    entries: list[Erasure] = []
    if ledger.exists():
        entries = ledger.entries()
    elif not allow_missing_ledger:
        raise BackupError(
            f"no erasure ledger at {ledger.path}: without it, subjects erased after this backup was made "
            "would come back. Put the ledger kept beside the master key there (FACEWARD_ERASURE_LEDGER), "
            "or accept the loss explicitly with `faceward restore --without-ledger`"
        )
    with _scratch(scratch) as folder:
        dump = folder / "dump"
        header = open_file(source, dump, keyring)
        recorded = LedgerHead(int(header["ledger"]["count"]), str(header["ledger"]["hash"]))
        if ledger.exists():
            ledger.check_extends(recorded, entries)
        _restore_db(str(header["database"]), dump, url)
    # Migrate an older backup to the current schema, then work as the restoring (owning) role: every
    # query still binds its tenant, which PostgreSQL's forced policies read, and the owner need not
    # be a member of the application role.
    store = SqlStore.open(url, role=None)
    try:
        subjects, tenants = apply_ledger(store, ledger, entries)
    finally:
        store.close()
    if subjects or tenants:
        _compact(url)
    return RestoreReport(
        str(header["backup_id"]), str(header["database"]), datetime.fromisoformat(header["created_at"]),
        subjects, tenants, len(entries), dict(header.get("extra") or {}),
    )


def apply_ledger(
    store: SqlStore, ledger: ErasureLedger, entries: list[Erasure] | None = None,
) -> tuple[list[tuple[str, str]], list[str]]:
    """Erase again, in ``store``, every subject and tenant the ledger lists; returns those that were present.

    The ledger holds keyed hashes, not ids: every tenant id, and every subject id of the tenants
    that stay, is hashed and looked up (a restore's one pass over the subjects' ids).
    """
    from faceward.errors import NotFound
    from faceward.store.integrity import IntegrityStore

    erased = ledger.erased(entries)
    known = sorted(t for t, _, _ in store.tenant_directory())
    tenants = [t for t in known if erased.tenant(t)]
    for tenant_id in tenants:
        store.update_tenant(tenant_id, wrapped_key=None, status="deleted")
        store.delete_tenant(tenant_id)
    integrity = IntegrityStore(store)
    subjects: list[tuple[str, str]] = []
    for tenant_id in (t for t in known if t not in tenants and erased.any_subject):
        due = [(s, at) for batch in integrity.subject_ids(tenant_id) for s in batch
               if (at := erased.subject(tenant_id, s)) is not None]
        for subject_id, at in due:
            try:
                store.delete_subject(tenant_id, subject_id, at=at)
            except NotFound:
                continue
            subjects.append((tenant_id, subject_id))
    return subjects, tenants


def _compact(url: str) -> None:
    """Rewrite the restored database so no free page still holds the rows just erased again (keys included)."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_path(url), timeout=30)
        try:
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        return
    from sqlalchemy import text

    engine = _pg_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM FULL"))  # the database restored into is empty but for this store
    finally:
        engine.dispose()


__all__ = ["BackupError", "BackupInfo", "RestoreReport", "apply_ledger", "backup", "open_file", "read_header", "restore"]
