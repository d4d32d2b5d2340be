"""One act, one unit of work: a steady-state search is at most three store transactions and reads its tenant once.

Counted with SQLAlchemy's engine events on the real store (SQLite and PostgreSQL):
authentication, the act, and nothing else in between.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from apiworld import World
from sqlalchemy import event

from faceward.security.permissions import Role

FORM = {"purpose": "identify a witness for case review", "case_reference": "CASE-2026-0042"}
TENANT_READ = re.compile(r"FROM tenants\s+WHERE tenants\.id = ", re.S)


@contextmanager
def counting(world: World) -> Iterator[dict[str, list[Any]]]:
    engine = world.services.gallery.store.engine
    seen: dict[str, list[Any]] = {"transactions": [], "tenant_reads": []}

    def begin(conn: Any) -> None:
        seen["transactions"].append(conn)

    def statement(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if TENANT_READ.search(sql):
            seen["tenant_reads"].append(sql)

    event.listen(engine, "begin", begin)
    event.listen(engine, "before_cursor_execute", statement)
    try:
        yield seen
    finally:
        event.remove(engine, "begin", begin)
        event.remove(engine, "before_cursor_execute", statement)


def test_a_steady_state_search_is_three_transactions_and_one_tenant_read(world: World, astronaut_probe: bytes) -> None:
    searcher = world.own.auth(Role.SEARCHER)
    files = {"image": ("probe.jpg", astronaut_probe, "image/jpeg")}
    warm = world.api.post("/v1/search", headers=searcher, data=FORM, files=files)  # index built, keys unwrapped
    assert warm.status_code == 200, warm.text
    with counting(world) as seen:
        found = world.api.post("/v1/search", headers=searcher, data=FORM, files=files)
    assert found.status_code == 200, found.text
    assert found.json()["candidates"], found.text
    assert len(seen["transactions"]) <= 3, len(seen["transactions"])
    assert len(seen["tenant_reads"]) == 1, seen["tenant_reads"]
