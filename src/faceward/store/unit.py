"""One transaction per act: the store calls inside a unit of work join it, and tenant rows are read once.

A unit is bound to the current context (a request's thread, a CLI command), so the use cases need
not pass a connection around: :meth:`SqlStore.transaction` joins the unit when one is open.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

from faceward.store.records import TenantRecord

if TYPE_CHECKING:
    from faceward.store.sql import SqlStore


@dataclass
class Unit:
    """One act's transaction: every store call inside joins it; tenant rows are read at most once."""

    store: SqlStore
    conn: Connection
    bound: str
    tenants: dict[str, TenantRecord] = field(default_factory=dict)


_UNIT: ContextVar[Unit | None] = ContextVar("faceward_unit_of_work", default=None)


def current_unit(store: SqlStore) -> Unit | None:
    unit = _UNIT.get()
    return unit if unit is not None and unit.store is store else None


@contextmanager
def unit_of_work(store: SqlStore, tenant_id: str | None = None, *, known: TenantRecord | None = None) -> Iterator[None]:
    """Run an act's store calls in one transaction (joined by every :meth:`transaction` inside).

    ``known`` is a tenant row the caller already holds (authentication read it): the act uses
    it instead of reading the row again. Keep slow work (face analysis) outside: on SQLite the
    first write holds the database's write lock until the unit commits.
    """
    unit = current_unit(store)
    if unit is not None:
        if known is not None:
            unit.tenants.setdefault(known.id, known)
        yield
        return
    with store._guard(), store.engine.begin() as conn:
        if store.is_postgres:
            conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant_id or ""})
        token = _UNIT.set(Unit(store, conn, tenant_id or "", {known.id: known} if known is not None else {}))
        try:
            yield
        finally:
            _UNIT.reset(token)


__all__ = ["Unit", "current_unit", "unit_of_work"]
