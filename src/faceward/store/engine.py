"""Engines for the store's URLs: SQLite pragmas, PostgreSQL's application role.

Apart from :mod:`faceward.store.sql` so that the migrations and the store both
build engines without importing each other.
"""

from __future__ import annotations

import os

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

SQLITE_CACHE_KIB = 512


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # A small page cache per connection (the OS caches the file anyway): with a pool of connections
    # at the default 2 MiB each, the server's memory crept up for as long as the database grew.
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    # Erased rows are overwritten with zeros, not just unlinked: a subject's wrapped key must not
    # survive in free pages of the file.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


APP_ROLE = "faceward_app"
"""The PostgreSQL role the service works as (created by migration 0003): no table ownership, no BYPASSRLS."""


def _set_role(role: str) -> Callable[[Any, Any], None]:
    def set_role(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute(f'SET ROLE "{role}"')
        cursor.close()
        dbapi_conn.commit()  # a SET inside a rolled-back transaction would be undone

    return set_role


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does (it would use the umask, often 0644); SQLite
    gives its -wal and -shm files the database file's mode. An existing file keeps its mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def make_engine(url: str, *, role: str | None = None, poolclass: Any = None) -> Engine:
    """An engine for ``url``; on PostgreSQL with ``role``, every connection ``SET ROLE``s to it first."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _create_private(Path(path))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10}, poolclass=poolclass)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if poolclass is not None:
        engine = create_engine(url, poolclass=poolclass)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    if role is not None and engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _set_role(role))
    return engine


__all__ = ["APP_ROLE", "SQLITE_CACHE_KIB", "make_engine"]
