"""The audit chain on both stores: sealed payloads, filters, and tamper detection naming the first bad entry."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, delete, insert, select, update

from faceward.errors import InvalidInput
from faceward.security.crypto import Keyring, new_key
from faceward.security.audit import AuditLog
from faceward.store import SqlStore, TenantRecord, make_engine, schema

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture()
def log(db_url: str) -> Iterator[AuditLog]:
    store = SqlStore.open(db_url)
    keyring = Keyring(os.urandom(32))
    keys: dict[str, bytes] = {}
    for tenant_id in ("t_a", "t_b"):
        keys[tenant_id] = new_key()
        store.add_tenant(TenantRecord(tenant_id, b"-", keyring.wrap_tenant_key(tenant_id, keys[tenant_id]), "active", T0, {}))
    yield AuditLog(store, keys.__getitem__, clock=Clock())
    store.close()


def fill(log: AuditLog, tenant_id: str = "t_a", n: int = 6) -> None:
    for i in range(n):
        log.append(
            tenant_id, actor=f"key:k{i % 2}", action="search" if i % 3 else "subject.delete",
            details={"i": i, "subject_id": f"s_{i}"}, source=f"10.0.0.{i}",
        )


def test_append_and_read_back(log: AuditLog) -> None:
    fill(log)
    fill(log, "t_b", 2)
    entries = log.entries("t_a")
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5, 6]
    assert entries[0].actor == "key:k0" and entries[0].action == "subject.delete" and entries[0].source == "10.0.0.0"
    assert entries[3].details == {"i": 3, "subject_id": "s_3"}
    assert [e.seq for e in log.entries("t_b")] == [1, 2]  # per-tenant sequences


def test_filters_and_paging(log: AuditLog) -> None:
    fill(log)
    assert [e.seq for e in log.entries("t_a", actor="key:k1")] == [2, 4, 6]
    assert [e.seq for e in log.entries("t_a", action="subject.delete")] == [1, 4]
    assert [e.seq for e in log.entries("t_a", since=T0 + timedelta(seconds=3), until=T0 + timedelta(seconds=5))] == [3, 4]
    assert [e.seq for e in log.entries("t_a", limit=2, offset=1)] == [2, 3]
    assert [e.seq for e in log.entries("t_a", limit=2, newest_first=True)] == [6, 5]
    assert [e.seq for e in log.entries("t_a", actor="key:k0", limit=1, offset=1)] == [3]
    with pytest.raises(InvalidInput):
        log.entries("t_a", limit=0)


def test_payloads_are_sealed(log: AuditLog) -> None:
    log.append("t_a", actor="key:secret-actor", action="search", details={"note": "needle-detail"}, source="198.51.100.7")
    with log.store.transaction("t_a") as conn:
        row = conn.execute(select(schema.audit_log)).mappings().one()
    blob = bytes(row["payload_sealed"]) + bytes(row["mac"])
    for clear in (b"secret-actor", b"search", b"needle-detail", b"198.51.100.7"):
        assert clear not in blob


def test_details_must_be_plain_json(log: AuditLog) -> None:
    with pytest.raises(InvalidInput):
        log.append("t_a", actor="x", action="a", details={"x": object()}, source=None)
    assert log.verify("t_a").entries == 0


def test_intact_chain_verifies(log: AuditLog) -> None:
    assert log.verify("t_a").ok
    fill(log)
    report = log.verify("t_a")
    assert report.ok and report.entries == 6 and report.first_bad is None and report.head == 6


@pytest.fixture()
def raw(db_url: str, log: AuditLog) -> Iterator[Engine]:
    """The database as an intruder with write access sees it: the login role, past RLS and grants."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def _tamper(raw: Engine, *statements: object) -> None:
    with raw.begin() as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[call-overload]


def _row(raw: Engine, tenant_id: str, seq: int) -> dict[str, object]:
    with raw.begin() as conn:
        return dict(conn.execute(select(LOG).where(LOG.c.tenant_id == tenant_id, LOG.c.seq == seq)).mappings().one())


LOG = schema.audit_log
WHERE = (LOG.c.tenant_id == "t_a",)


def test_edited_payload(log: AuditLog, raw: Engine) -> None:
    fill(log)
    sealed = _row(raw, "t_a", 4)["payload_sealed"]
    assert isinstance(sealed, bytes)
    flipped = bytes(sealed[:-1]) + bytes([sealed[-1] ^ 1])
    _tamper(raw, update(LOG).where(*WHERE, LOG.c.seq == 4).values(payload_sealed=flipped))
    report = log.verify("t_a")
    assert not report.ok and report.first_bad == 4 and report.entries == 6
    assert log.entries("t_a")[3].action == "(unreadable)"


def test_edited_time(log: AuditLog, raw: Engine) -> None:
    fill(log)
    _tamper(raw, update(LOG).where(*WHERE, LOG.c.seq == 3).values(at=T0 + timedelta(days=1)))
    assert log.verify("t_a").first_bad == 3


def test_deleted_entry(log: AuditLog, raw: Engine) -> None:
    fill(log)
    _tamper(raw, delete(LOG).where(*WHERE, LOG.c.seq == 2))
    report = log.verify("t_a")
    assert not report.ok and report.first_bad == 2 and "missing" in (report.reason or "")


def test_truncated_tail(log: AuditLog, raw: Engine) -> None:
    fill(log)
    _tamper(raw, delete(LOG).where(*WHERE, LOG.c.seq >= 5))
    report = log.verify("t_a")
    assert not report.ok and report.first_bad == 5


def test_inserted_entry(log: AuditLog, raw: Engine) -> None:
    fill(log)
    row = _row(raw, "t_a", 6)
    forged = row | {"seq": 7, "at": T0 + timedelta(days=1)}
    _tamper(raw, insert(LOG).values(**forged))
    assert log.verify("t_a").first_bad == 7


def test_inserted_in_the_middle(log: AuditLog, raw: Engine) -> None:
    fill(log)
    _tamper(
        raw,
        *[update(LOG).where(*WHERE, LOG.c.seq == s).values(seq=s + 1) for s in (6, 5, 4)],
    )
    row = _row(raw, "t_a", 3)
    _tamper(raw, insert(LOG).values(**(row | {"seq": 4})))
    assert log.verify("t_a").first_bad == 4


def test_swapped_entries(log: AuditLog, raw: Engine) -> None:
    fill(log)
    _tamper(
        raw,
        update(LOG).where(*WHERE, LOG.c.seq == 2).values(seq=100),
        update(LOG).where(*WHERE, LOG.c.seq == 3).values(seq=2),
        update(LOG).where(*WHERE, LOG.c.seq == 100).values(seq=3),
    )
    report = log.verify("t_a")
    assert not report.ok and report.first_bad == 2


def test_one_tenants_tampering_does_not_touch_anothers(log: AuditLog, raw: Engine) -> None:
    fill(log)
    fill(log, "t_b", 3)
    _tamper(raw, delete(LOG).where(*WHERE, LOG.c.seq == 1))
    assert log.verify("t_a").first_bad == 1 and log.verify("t_b").ok


def test_an_entry_copied_from_another_tenant_fails(log: AuditLog, raw: Engine) -> None:
    fill(log, "t_a", 2)
    fill(log, "t_b", 3)
    row = _row(raw, "t_b", 3)
    _tamper(raw, insert(LOG).values(**(row | {"tenant_id": "t_a"})))
    assert log.verify("t_a").first_bad == 3


def test_concurrent_appends_keep_one_chain(log: AuditLog) -> None:
    import threading

    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(8):
                log.append("t_a", actor=f"w{n}", action="search", details={"i": i}, source=None)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    report = log.verify("t_a")
    assert report.ok and report.entries == 32


def test_append_raises_when_it_cannot_record(log: AuditLog) -> None:
    with pytest.raises(KeyError):
        log.append("t_unknown", actor="x", action="search", details={}, source=None)  # no key: the act must fail
