"""The erasure ledger: a hash chain of keyed hashes that survives torn writes and concurrent writers, notices edits,
names no one, and rewrites the ledgers written before it with ids in clear."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from faceward.chainfile import ChainFile
from faceward.security.crypto import Keyring
from faceward.store.ledger import GENESIS, ErasureLedger, LedgerError, LedgerHead
from tests.integration.store.clear_ledger import AT, write_clear

MASTER = os.urandom(32)


def ledger_at(path: Path | str, master: bytes = MASTER) -> ErasureLedger:
    return ErasureLedger(path, Keyring(master))


def test_append_and_read_back(tmp_path: Path) -> None:
    ledger = ledger_at(tmp_path / "keys" / "erasures.jsonl")
    assert ledger.entries() == [] and ledger.head() == LedgerHead(0, GENESIS)
    first = ledger.record_subject("t_1", "s_1", at=AT)
    ledger.record_tenant("t_2", at=AT)
    entries = ledger.entries()
    assert [(e.n, e.kind) for e in entries] == [(0, "key"), (1, "subject"), (2, "tenant")]
    assert entries[1] == first and first.prev == entries[0].hash and entries[2].prev == first.hash
    erased = ledger.erased()
    assert erased.subject("t_1", "s_1") == AT and erased.tenant("t_2")
    assert erased.subject("t_1", "s_2") is None and erased.subject("t_2", "s_1") is None and not erased.tenant("t_1")
    assert (ledger.path.stat().st_mode & 0o777) == 0o600
    with pytest.raises(ValueError):
        ledger.append("subject", "t_1")


def test_the_ledger_names_no_one(tmp_path: Path) -> None:
    tenant, subject = "t_" + "ab" * 14, "s_" + "cd" * 14
    ledger = ledger_at(tmp_path / "l.jsonl")
    ledger.record_subject(tenant, subject, at=AT)
    ledger.record_tenant("t_" + "ef" * 14, at=AT)
    raw = ledger.path.read_bytes()
    for name in (tenant, subject, "ef" * 14, "ab" * 14, "cd" * 14):
        assert name.encode() not in raw
    # The same ids hash apart under another ledger's key: entries cannot be linked across ledgers.
    other = ledger_at(tmp_path / "other.jsonl", os.urandom(32))
    other.record_subject(tenant, subject, at=AT)
    assert {e.ref for e in ledger.entries() if e.ref}.isdisjoint({e.ref for e in other.entries() if e.ref})
    # Without the master key the ledger cannot even be matched.
    with pytest.raises(LedgerError, match="no master key"):
        ledger_at(ledger.path, os.urandom(32)).erased()


@pytest.mark.parametrize("edit", ["ref", "drop", "swap"])
def test_edits_break_the_chain(tmp_path: Path, edit: str) -> None:
    ledger = ledger_at(tmp_path / "l.jsonl")
    for n in range(3):
        ledger.record_subject("t_1", f"s_{n}", at=AT)
    lines = ledger.path.read_text().splitlines()
    if edit == "ref":
        data = json.loads(lines[2])
        data["ref"] = json.loads(lines[3])["ref"]
        lines[2] = json.dumps(data)
    elif edit == "drop":
        del lines[2]
    else:
        lines[1], lines[2] = lines[2], lines[1]
    ledger.path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LedgerError, match="breaks"):
        ledger.entries()


def test_torn_last_line_is_ignored_then_replaced(tmp_path: Path) -> None:
    ledger = ledger_at(tmp_path / "l.jsonl")
    ledger.record_subject("t_1", "s_1", at=AT)
    with ledger.path.open("ab") as handle:
        handle.write(b'{"n":2,"kind":"sub')  # power cut mid-append
    assert len(ledger.entries()) == 2
    ledger.record_subject("t_1", "s_2", at=AT)
    erased = ledger.erased()
    assert len(ledger.entries()) == 3 and erased.subject("t_1", "s_1") and erased.subject("t_1", "s_2")


def test_a_ledger_must_extend_the_head_a_backup_saw(tmp_path: Path) -> None:
    ledger = ledger_at(tmp_path / "l.jsonl")
    ledger.record_subject("t_1", "s_1", at=AT)
    seen = ledger.head()
    ledger.record_subject("t_1", "s_2", at=AT)
    ledger.check_extends(seen)
    ledger.check_extends(LedgerHead(0, GENESIS))
    older = ledger_at(tmp_path / "older.jsonl")
    with pytest.raises(LedgerError, match="does not extend"):
        older.check_extends(seen)
    other = ledger_at(tmp_path / "other.jsonl")
    other.record_subject("t_9", "s_9", at=AT)
    with pytest.raises(LedgerError, match="does not extend"):
        other.check_extends(seen)


def test_a_ledger_written_in_clear_is_rewritten_keyed(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    heads = write_clear(path, [("subject", "t_1", "s_gone"), ("tenant", "t_shredded", None), ("subject", "t_1", "s_too")])
    ledger = ledger_at(path)
    assert ledger.convert() == 3
    raw = path.read_bytes()
    assert all(name not in raw for name in (b"t_1", b"s_gone", b"t_shredded", b"s_too", b"tenant_id", b"subject_id"))
    entries = ledger.entries()
    assert [(e.n, e.kind) for e in entries] == [(0, "subject"), (1, "tenant"), (2, "subject"), (3, "key")]
    erased = ledger.erased()
    assert erased.subject("t_1", "s_gone") == AT and erased.subject("t_1", "s_too") == AT and erased.tenant("t_shredded")
    for head in heads:  # backups made before the rewrite recorded the old chain's heads: still extended
        ledger.check_extends(head)
    with pytest.raises(LedgerError, match="does not extend"):
        ledger.check_extends(LedgerHead(2, heads[2].hash))  # a head it never had at that count
    assert ledger.convert() == 0 and path.read_bytes() == raw  # idempotent
    ledger.record_subject("t_1", "s_new", at=AT)
    assert ledger.erased().subject("t_1", "s_new") == AT and len(ledger.entries()) == 5


def test_reading_or_appending_rewrites_a_clear_ledger_first(tmp_path: Path) -> None:
    read, written = tmp_path / "read.jsonl", tmp_path / "written.jsonl"
    write_clear(read, [("subject", "t_1", "s_old")])
    write_clear(written, [("subject", "t_1", "s_old")])
    assert ledger_at(read).erased().subject("t_1", "s_old") == AT and b"s_old" not in read.read_bytes()
    ledger_at(written).record_subject("t_1", "s_new", at=AT)
    assert b"s_old" not in written.read_bytes() and b"s_new" not in written.read_bytes()
    erased = ledger_at(written).erased()
    assert erased.subject("t_1", "s_old") and erased.subject("t_1", "s_new")


def test_master_key_rotation_rewraps_the_ledger_key(tmp_path: Path) -> None:
    ledger = ledger_at(tmp_path / "l.jsonl")
    ledger.record_subject("t_1", "s_1", at=AT)
    seen = ledger.head()
    new = os.urandom(32)
    assert ledger.rewrap_key(Keyring(new)) is True and ledger.rewrap_key(Keyring(new)) is False
    rotated = ledger_at(ledger.path, new)  # a process that holds only the new master key
    assert rotated.erased().subject("t_1", "s_1") == AT
    rotated.record_subject("t_1", "s_2", at=AT)
    assert ledger_at(ledger.path).erased().subject("t_1", "s_2") == AT  # the old key still opens the first wrap
    rotated.check_extends(seen)
    assert ledger_at(tmp_path / "none.jsonl").rewrap_key(Keyring(new)) is False


def test_a_writer_waiting_on_a_rewrite_appends_to_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    ledger = ledger_at(path)
    ledger.record_subject("t_1", "s_1", at=AT)
    before = path.read_bytes().splitlines(keepends=True)
    holding, done = threading.Event(), threading.Event()

    def waiter() -> None:
        holding.wait(5)
        ledger_at(path).record_subject("t_1", "s_2", at=AT)  # blocks on the lock of the file about to be replaced
        done.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    with ChainFile(path).locked() as chain:
        holding.set()
        assert not done.wait(0.3)
        chain.replace(before)  # same lines, new file: the waiter must not append to the old one
    thread.join(5)
    erased = ledger_at(path).erased()
    assert erased.subject("t_1", "s_1") and erased.subject("t_1", "s_2")


def _append_many(path: str, worker: int) -> None:
    ledger = ledger_at(path)
    for n in range(25):
        ledger.record_subject("t_1", f"s_{worker}_{n}")


@pytest.mark.parametrize("start", ["empty", "clear"])
def test_processes_share_one_ledger(tmp_path: Path, start: str) -> None:
    path = tmp_path / "l.jsonl"
    if start == "clear":  # every process finds it in clear: it is rewritten once, and no append is lost
        write_clear(path, [("subject", "t_1", "s_old")])
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(str(path), w)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(30)
        assert p.exitcode == 0
    ledger = ledger_at(path)
    entries = ledger.entries()  # the chain holds: every append saw the one before
    assert sum(e.kind == "key" for e in entries) == 1 and sum(e.kind == "subject" for e in entries) == 100 + (start == "clear")
    erased = ledger.erased()
    assert all(erased.subject("t_1", f"s_{w}_{n}") for w in range(4) for n in range(25))


def test_every_start_rewrites_a_clear_ledger_and_a_broken_one_does_not_stop_it(tmp_path: Path) -> None:
    import base64

    from faceward.settings import Settings
    from faceward.wiring import build_services

    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'fw.db'}",
                        master_key=base64.b64encode(MASTER).decode())
    path = settings.erasure_ledger_file
    write_clear(path, [("subject", "t_1", "s_old")])
    services = build_services(settings, analysis_workers=False)
    services.gallery.store.close()
    assert b"s_old" not in path.read_bytes() and ledger_at(path).erased().subject("t_1", "s_old") == AT
    path.write_text("not a ledger\n")
    build_services(settings, analysis_workers=False).gallery.store.close()  # the doctor and erasures say it is broken
