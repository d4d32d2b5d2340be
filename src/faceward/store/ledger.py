"""The erasure ledger: an append-only list of what faceward must never bring back.

Erasing a subject deletes its row, faces and wrapped subject key from the
store. A backup taken before the erasure still holds them, so restoring it
would resurrect the subject. The ledger is the store's memory of erasures kept
*outside* the data and its backups (beside the master key, in
``FACEWARD_ERASURE_LEDGER``); :func:`faceward.store.backup.restore` applies
it before the restored store is used, and ``faceward doctor`` checks that no
subject it lists is present. See ``docs/decisions/007-erasure-and-backups.md``.

Format: one JSON object per line, ``n`` counting from 0::

    {"n", "kind": "subject"|"tenant", "tenant_id", "subject_id", "at", "prev", "hash"}

``hash = sha256(prev || canonical JSON of the other fields)`` and ``prev`` is
the previous entry's hash (64 zeros for entry 0): a hash chain, so an edited,
dropped or reordered entry is detected, and a backup records the ledger's head
``(count, hash)`` so a restore can tell a ledger that was rolled back to before
the backup. The ledger holds random ids and times only: no name, reference,
template or key.

Appends take an exclusive ``flock`` and ``fsync`` before they return, so that
several processes (workers, the CLI) can share one ledger file and an erasure
acknowledged to a client is on disk. The erasure path writes the ledger entry
*before* it deletes from the store: after a crash between the two, the ledger
lists a subject the store still holds, which ``faceward doctor`` reports and
``--repair`` finishes erasing (the caller asked for it); never the reverse.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from faceward.chainfile import GENESIS, ChainFile
from faceward.errors import FacewardError

KINDS = ("subject", "tenant")


class LedgerError(FacewardError):
    """The ledger is unreadable, broken (hash chain) or older than a backup that must be restored."""

    code = "erasure_ledger"
    status = 500


@dataclass(frozen=True, slots=True)
class Erasure:
    n: int
    kind: str
    tenant_id: str
    subject_id: str | None
    at: datetime
    prev: str
    hash: str

    def line(self) -> bytes:
        data = {"n": self.n, "kind": self.kind, "tenant_id": self.tenant_id, "subject_id": self.subject_id,
                "at": self.at.isoformat(), "prev": self.prev, "hash": self.hash}
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode() + b"\n"


@dataclass(frozen=True, slots=True)
class LedgerHead:
    """How far a ledger goes: entry count and the last entry's hash (``GENESIS`` when empty)."""

    count: int
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "hash": self.hash}


def _digest(prev: str, n: int, kind: str, tenant_id: str, subject_id: str | None, at: datetime) -> str:
    body = json.dumps(
        {"n": n, "kind": kind, "tenant_id": tenant_id, "subject_id": subject_id, "at": at.isoformat()},
        sort_keys=True, separators=(",", ":"),
    )
    return hashlib.sha256(prev.encode() + body.encode()).hexdigest()


def _parse(raw: bytes, where: str) -> Erasure:
    try:
        data = json.loads(raw)
        entry = Erasure(
            int(data["n"]), str(data["kind"]), str(data["tenant_id"]),
            None if data["subject_id"] is None else str(data["subject_id"]),
            datetime.fromisoformat(data["at"]), str(data["prev"]), str(data["hash"]),
        )
    except (ValueError, KeyError, TypeError):
        raise LedgerError(f"erasure ledger {where}: not a ledger entry") from None
    if entry.kind not in KINDS:
        raise LedgerError(f"erasure ledger {where}: unknown kind {entry.kind!r}")
    return entry


class ErasureLedger:
    """The ledger file at ``path`` (created on the first append, mode 0600)."""

    def __init__(self, path: Path | str) -> None:
        self._file = ChainFile(path)
        self.path = self._file.path

    def __repr__(self) -> str:
        return f"ErasureLedger({str(self.path)!r})"

    def exists(self) -> bool:
        return self._file.exists()

    # -- writing --------------------------------------------------------------------

    def append(self, kind: str, tenant_id: str, subject_id: str | None = None, *, at: datetime | None = None) -> Erasure:
        """Add one erasure and fsync it; returns the entry. ``kind`` is "subject" or "tenant"."""
        if kind not in KINDS:
            raise ValueError(f"unknown erasure kind {kind!r}")
        if (kind == "subject") != (subject_id is not None):
            raise ValueError("a subject erasure names its subject; a tenant erasure does not")
        moment = at or datetime.now(timezone.utc)
        made: list[Erasure] = []

        def line(last: bytes | None) -> bytes:
            previous = _parse(last, "last entry") if last is not None else None
            n, prev = (previous.n + 1, previous.hash) if previous else (0, GENESIS)
            made.append(Erasure(n, kind, tenant_id, subject_id, moment, prev, _digest(prev, n, kind, tenant_id, subject_id, moment)))
            return made[0].line()

        self._file.append(line)  # a torn last line (power cut mid-write) is dropped: never acknowledged
        return made[0]

    def record_subject(self, tenant_id: str, subject_id: str, *, at: datetime | None = None) -> Erasure:
        return self.append("subject", tenant_id, subject_id, at=at)

    def record_tenant(self, tenant_id: str, *, at: datetime | None = None) -> Erasure:
        return self.append("tenant", tenant_id, at=at)

    # -- reading --------------------------------------------------------------------

    def entries(self) -> list[Erasure]:
        """Every entry, the hash chain checked; an empty list if there is no ledger yet.

        A last line without its newline (torn write) is ignored: it was never
        fsynced, so its erasure was never acknowledged.
        """
        try:
            complete = self._file.lines()  # the part after the last newline is empty or torn
        except OSError as exc:
            raise LedgerError(f"cannot read erasure ledger {self.path}: {exc.strerror or exc}") from None
        out: list[Erasure] = []
        prev = GENESIS
        for number, raw in enumerate(complete):
            entry = _parse(raw, f"line {number + 1}")
            expected = _digest(prev, number, entry.kind, entry.tenant_id, entry.subject_id, entry.at)
            if entry.n != number or entry.prev != prev or entry.hash != expected:
                raise LedgerError(f"erasure ledger {self.path}: the hash chain breaks at line {number + 1}")
            out.append(entry)
            prev = entry.hash
        return out

    def head(self, entries: list[Erasure] | None = None) -> LedgerHead:
        entries = self.entries() if entries is None else entries
        return LedgerHead(len(entries), entries[-1].hash if entries else GENESIS)

    def check_extends(self, head: LedgerHead, entries: list[Erasure] | None = None) -> None:
        """Raise :class:`LedgerError` unless this ledger holds every entry it held at ``head``."""
        entries = self.entries() if entries is None else entries
        if head.count == 0:
            return
        if len(entries) < head.count or entries[head.count - 1].hash != head.hash:
            raise LedgerError(
                f"the erasure ledger {self.path} holds {len(entries)} entries and does not extend the "
                f"{head.count} it held when the backup was made: it is an older or another ledger. "
                "Restore the ledger from where it is kept beside the master key; restoring without it "
                "would bring erased subjects back"
            )

    def erased_subjects(self, entries: list[Erasure] | None = None) -> set[tuple[str, str]]:
        entries = self.entries() if entries is None else entries
        return {(e.tenant_id, e.subject_id) for e in entries if e.kind == "subject" and e.subject_id}

    def erased_tenants(self, entries: list[Erasure] | None = None) -> set[str]:
        entries = self.entries() if entries is None else entries
        return {e.tenant_id for e in entries if e.kind == "tenant"}


__all__ = ["GENESIS", "Erasure", "ErasureLedger", "LedgerError", "LedgerHead"]
