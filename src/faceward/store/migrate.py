"""Bring a database to the current schema with Alembic; ``SqlStore.open(url, create=True)`` calls this.

Runs as the connecting (owning) role, never as the application role. A
database already at head costs one small query. A database made before
migrations existed (``metadata.create_all``) is stamped at the revision its
tables match and upgraded from there. On PostgreSQL an advisory lock keeps two
processes from migrating at once.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from faceward.store.engine import make_engine

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK = 0x66616365  # "face": the advisory lock every migrating process takes


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def head() -> str:
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


def current(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _legacy_revision(conn: Connection) -> str | None:
    """The revision an un-versioned database's tables match, or None for an empty database."""
    tables = set(inspect(conn).get_table_names())
    if "api_keys" in tables:
        return "0002"
    if "tenants" in tables:
        return "0001"
    return None


def upgrade_connection(conn: Connection) -> str | None:
    """Migrate to head; returns the revision the database was at (None for an empty one)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    version = current(conn)
    if version == head():
        return version
    config = alembic_config(conn)
    if version is None and (legacy := _legacy_revision(conn)) is not None:
        command.stamp(config, legacy)
        version = legacy
    command.upgrade(config, "head")
    return version


def upgrade(target: str | Engine) -> str | None:
    """Migrate the database at ``target`` (a URL or an engine that connects as the owner) to head.

    Returns the revision it was at before (None for an empty database).
    """
    engine = make_engine(target, poolclass=NullPool) if isinstance(target, str) else target
    try:
        with engine.begin() as conn:
            return upgrade_connection(conn)
    finally:
        if isinstance(target, str):
            engine.dispose()


def is_current(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            return current(conn) == head()
    except DBAPIError:
        return False


__all__ = ["alembic_config", "current", "head", "is_current", "upgrade", "upgrade_connection"]
