"""Usage counters on both stores: counts per key and kind per day, sealed owners and counts."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from faceward.security.crypto import Keyring
from faceward.security.permissions import Role
from faceward.services.accounts import AccountService
from faceward.security.audit import AuditLog
from faceward.services.gallery import GalleryService
from faceward.services.usage import UsageService
from faceward.settings import Settings
from faceward.store import SqlStore, schema

DAY = date(2026, 11, 1)


@pytest.fixture()
def services(db_url: str, tmp_path: Path) -> Iterator[tuple[AccountService, UsageService]]:
    store = SqlStore.open(db_url)
    gallery = GalleryService(store, Keyring(os.urandom(32)), Settings(home=tmp_path / "home"))
    yield AccountService(gallery, AuditLog(store, gallery.vault.tenant_key)), UsageService(store, gallery.vault)
    store.close()


def test_counts_per_key_kind_and_day(services: tuple[AccountService, UsageService]) -> None:
    accounts, usage = services
    tenant_id, _ = accounts.create_tenant("Acme")
    other, _ = accounts.create_tenant("Other")
    searcher, _ = accounts.create_key(tenant_id, Role.SEARCHER, "s", None, actor="operator", source=None)
    assert [usage.record(tenant_id, searcher.id, "search", day=DAY) for _ in range(3)] == [1, 2, 3]
    assert usage.record(tenant_id, searcher.id, "verify", day=DAY) == 1
    assert usage.record(tenant_id, searcher.id, "search", day=date(2026, 11, 2)) == 1
    assert usage.record(other, searcher.id, "search", day=DAY) == 1  # counters never cross tenants
    summary = usage.summary(tenant_id)
    assert summary["keys"] == {"admin": 1, "enroller": 0, "searcher": 1, "auditor": 0}
    assert summary["searches"] == {searcher.id: {"2026-11-01": 3, "2026-11-02": 1}}
    assert summary["subjects"] == 0 and summary["faces"] == 0
    assert {"key_id": searcher.id, "kind": "verify", "day": "2026-11-01", "count": 1} in summary["usage"]
    assert usage.summary(other)["searches"] == {searcher.id: {"2026-11-01": 1}}


def test_owners_and_counts_are_sealed(services: tuple[AccountService, UsageService]) -> None:
    accounts, usage = services
    tenant_id, _ = accounts.create_tenant("Acme")
    key, _ = accounts.create_key(tenant_id, Role.SEARCHER, "s", None, actor="operator", source=None)
    for _ in range(7):
        usage.record(tenant_id, key.id, "search", day=DAY)
    with usage.store.transaction(tenant_id) as conn:
        [row] = conn.execute(select(schema.usage)).mappings().all()
    blob = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row.values())
    assert key.id.encode() not in blob and b"search" not in blob and b"\x07" != bytes(row["count_sealed"])[-1:]


def test_concurrent_increments_are_not_lost(services: tuple[AccountService, UsageService]) -> None:
    accounts, usage = services
    tenant_id, _ = accounts.create_tenant("Acme")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                usage.record(tenant_id, "k", "search", day=DAY)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert usage.record(tenant_id, "k", "search", day=DAY) == 41
