"""The erasure ledger: a hash chain that survives torn writes and concurrent writers, and notices edits."""

from __future__ import annotations

import json
import multiprocessing
from datetime import datetime, timezone
from pathlib import Path

import pytest

from faceward.store.ledger import GENESIS, ErasureLedger, LedgerError, LedgerHead

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_append_and_read_back(tmp_path: Path) -> None:
    ledger = ErasureLedger(tmp_path / "keys" / "erasures.jsonl")
    assert ledger.entries() == [] and ledger.head() == LedgerHead(0, GENESIS)
    first = ledger.record_subject("t_1", "s_1", at=AT)
    ledger.record_tenant("t_2", at=AT)
    entries = ledger.entries()
    assert [(e.n, e.kind, e.tenant_id, e.subject_id) for e in entries] == [(0, "subject", "t_1", "s_1"), (1, "tenant", "t_2", None)]
    assert entries[0] == first and entries[1].prev == first.hash
    assert ledger.erased_subjects() == {("t_1", "s_1")} and ledger.erased_tenants() == {"t_2"}
    assert (ledger.path.stat().st_mode & 0o777) == 0o600
    with pytest.raises(ValueError):
        ledger.append("subject", "t_1")


@pytest.mark.parametrize("edit", ["subject", "drop", "swap"])
def test_edits_break_the_chain(tmp_path: Path, edit: str) -> None:
    ledger = ErasureLedger(tmp_path / "l.jsonl")
    for n in range(3):
        ledger.record_subject("t_1", f"s_{n}", at=AT)
    lines = ledger.path.read_text().splitlines()
    if edit == "subject":
        data = json.loads(lines[1])
        data["subject_id"] = "s_other"
        lines[1] = json.dumps(data)
    elif edit == "drop":
        del lines[1]
    else:
        lines[0], lines[1] = lines[1], lines[0]
    ledger.path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LedgerError, match="breaks"):
        ledger.entries()


def test_torn_last_line_is_ignored_then_replaced(tmp_path: Path) -> None:
    ledger = ErasureLedger(tmp_path / "l.jsonl")
    ledger.record_subject("t_1", "s_1", at=AT)
    with ledger.path.open("ab") as handle:
        handle.write(b'{"n":1,"kind":"sub')  # power cut mid-append
    assert len(ledger.entries()) == 1
    ledger.record_subject("t_1", "s_2", at=AT)
    assert [e.subject_id for e in ledger.entries()] == ["s_1", "s_2"]


def test_a_ledger_must_extend_the_head_a_backup_saw(tmp_path: Path) -> None:
    ledger = ErasureLedger(tmp_path / "l.jsonl")
    ledger.record_subject("t_1", "s_1", at=AT)
    seen = ledger.head()
    ledger.record_subject("t_1", "s_2", at=AT)
    ledger.check_extends(seen)
    ledger.check_extends(LedgerHead(0, GENESIS))
    older = ErasureLedger(tmp_path / "older.jsonl")
    with pytest.raises(LedgerError, match="does not extend"):
        older.check_extends(seen)
    other = ErasureLedger(tmp_path / "other.jsonl")
    other.record_subject("t_9", "s_9", at=AT)
    with pytest.raises(LedgerError, match="does not extend"):
        other.check_extends(seen)


def _append_many(path: str, worker: int) -> None:
    ledger = ErasureLedger(path)
    for n in range(25):
        ledger.record_subject("t_1", f"s_{worker}_{n}")


def test_processes_share_one_ledger(tmp_path: Path) -> None:
    path = str(tmp_path / "l.jsonl")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(path, w)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(30)
        assert p.exitcode == 0
    entries = ErasureLedger(path).entries()  # the chain holds: every append saw the one before
    assert len(entries) == 100 and len({e.subject_id for e in entries}) == 100
