"""The erasure ledger: an append-only list of what faceward must never bring back.

Erasing a subject deletes its row, faces and wrapped subject key from the
store. A backup taken before the erasure still holds them, so restoring it
would resurrect the subject. The ledger is the store's memory of erasures kept
*outside* the data and its backups (beside the master key, in
``FACEWARD_ERASURE_LEDGER``); :func:`faceward.store.backup.restore` applies
it before the restored store is used, and ``faceward doctor`` checks that no
subject it lists is present. See ``docs/decisions/007-erasure-and-backups.md``.

It names no one: an entry holds ``ref``, a keyed hash of the erased tenant id or
of the tenant-scoped subject id, under a key only the master key opens
(:mod:`faceward.security.erasure_keys`). Applying it hashes the candidates (the
tenants and subjects of a restored store) and compares: :class:`Erased`.

Format (version 2): one JSON object per line, ``n`` counting from 0::

    {"v": 2, "n", "kind": "subject"|"tenant", "ref", "at", "prev", "hash"}   an erasure
    {"v": 2, "n", "kind": "key", "wrapped", "at", "prev", "hash"}            the ledger key, wrapped

``hash = sha256(prev || canonical JSON of the other fields)`` and ``prev`` is
the previous entry's hash (64 zeros for entry 0): a hash chain, so an edited,
dropped or reordered entry is detected, and a backup records the ledger's head
``(count, hash)`` so a restore can tell a ledger that was rolled back to before
the backup. A master-key rotation appends the same key wrapped anew.

Lines written before version 2 hold the ids in clear (``tenant_id``,
``subject_id``). This version rewrites them the first time it touches the
ledger (:meth:`ErasureLedger.convert`, which every start runs): each becomes a
version-2 entry with the same ``n`` and time and ``was``, a keyed hash of its
old hash, so a backup that recorded the old chain's head still finds it.

Appends take an exclusive ``flock`` and ``fsync`` before they return, so that
several processes (workers, the CLI) can share one ledger file and an erasure
acknowledged to a client is on disk. The erasure path writes the ledger entry
*before* it deletes from the store: after a crash between the two, the ledger
lists a subject the store still holds, which ``faceward doctor`` reports and
``--repair`` finishes erasing (the caller asked for it); never the reverse.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from faceward.chainfile import GENESIS, ChainFile, LockedChain
from faceward.errors import FacewardError
from faceward.security.erasure_keys import ErasureKey, ErasureKeyring
from faceward.security.errors import SealError
from faceward.security.kms import TenantKeyWrapper

KINDS = ("subject", "tenant")
VERSION = 2


class LedgerError(FacewardError):
    """The ledger is unreadable, broken (hash chain) or older than a backup that must be restored."""

    code = "erasure_ledger"
    status = 500


def _canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def _chained(prev: str, body: dict[str, Any]) -> str:
    return hashlib.sha256(prev.encode() + _canonical(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class Erasure:
    """One entry: an erasure (``ref``), or the ledger key's wrap (kind ``key``, ``wrapped``)."""

    n: int
    kind: str
    at: datetime
    prev: str
    hash: str
    ref: str | None = None
    wrapped: str | None = None
    was: str | None = None  # on a line rewritten from the older format: its old hash, keyed

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"v": VERSION, "n": self.n, "kind": self.kind, "at": self.at.isoformat()}
        for name in ("ref", "wrapped", "was"):
            if (value := getattr(self, name)) is not None:
                data[name] = value
        return data

    def digest(self) -> str:
        return _chained(self.prev, self.body())

    def line(self) -> bytes:
        return _canonical({**self.body(), "prev": self.prev, "hash": self.hash}) + b"\n"


def _entry(n: int, kind: str, at: datetime, prev: str, **fields: str | None) -> Erasure:
    draft = Erasure(n, kind, at, prev, "", **fields)
    return replace(draft, hash=draft.digest())


@dataclass(frozen=True, slots=True)
class _Clear:
    """A line written before version 2, ids in clear: read only to be rewritten."""

    n: int
    kind: str
    tenant_id: str
    subject_id: str | None
    at: datetime
    prev: str
    hash: str

    def digest(self) -> str:
        return _chained(self.prev, {"n": self.n, "kind": self.kind, "tenant_id": self.tenant_id,
                                    "subject_id": self.subject_id, "at": self.at.isoformat()})


@dataclass(frozen=True, slots=True)
class LedgerHead:
    """How far a ledger goes: entry count and the last entry's hash (``GENESIS`` when empty)."""

    count: int
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "hash": self.hash}


def _parse(raw: bytes, where: str) -> Erasure | _Clear:
    try:
        data = json.loads(raw)
        at, prev, digest = datetime.fromisoformat(data["at"]), str(data["prev"]), str(data["hash"])
        if "v" not in data:
            subject = None if data["subject_id"] is None else str(data["subject_id"])
            clear = _Clear(int(data["n"]), str(data["kind"]), str(data["tenant_id"]), subject, at, prev, digest)
            if clear.kind not in KINDS:
                raise LedgerError(f"erasure ledger {where}: unknown kind {clear.kind!r}")
            return clear
        if data["v"] != VERSION:
            raise LedgerError(f"erasure ledger {where}: format {data['v']!r}, from a newer faceward")
        fields = {name: str(data[name]) for name in ("ref", "wrapped", "was") if name in data}
        entry = Erasure(int(data["n"]), str(data["kind"]), at, prev, digest, **fields)
    except (ValueError, KeyError, TypeError):
        raise LedgerError(f"erasure ledger {where}: not a ledger entry") from None
    if (entry.kind in KINDS and entry.ref is None) or (entry.kind == "key" and entry.wrapped is None) \
            or entry.kind not in (*KINDS, "key"):
        raise LedgerError(f"erasure ledger {where}: not a ledger entry of kind {entry.kind!r}")
    return entry


class Erased:
    """What a ledger lists as erased. It holds keyed hashes only, so a candidate id is hashed and looked up."""

    def __init__(self, key: ErasureKey | None, subjects: dict[str, datetime], tenants: set[str]) -> None:
        self._key, self._subjects, self._tenants = key, subjects, tenants

    @property
    def any_subject(self) -> bool:
        """Whether any subject is listed (else a restore need not hash a single subject id)."""
        return bool(self._subjects)

    def subject(self, tenant_id: str, subject_id: str) -> datetime | None:
        """When the ledger says this subject was erased; None when it does not list it."""
        if self._key is None or not self._subjects:
            return None
        return self._subjects.get(self._key.subject(tenant_id, subject_id))

    def tenant(self, tenant_id: str) -> bool:
        return self._key is not None and bool(self._tenants) and self._key.tenant(tenant_id) in self._tenants


class ErasureLedger:
    """The ledger file at ``path`` (created on the first append, mode 0600); ``keyring`` opens its key."""

    def __init__(self, path: Path | str, keyring: TenantKeyWrapper) -> None:
        self._file = ChainFile(path)
        self.path = self._file.path
        self._keys = ErasureKeyring(keyring)
        self._known: tuple[bytes, ErasureKey] | None = None  # (first line, key) of the file last prepared

    def __repr__(self) -> str:
        return f"ErasureLedger({str(self.path)!r})"

    def exists(self) -> bool:
        return self._file.exists()

    # -- the key and the older format -----------------------------------------------

    def _checked(self, lines: list[bytes]) -> list[Erasure | _Clear]:
        out: list[Erasure | _Clear] = []
        prev = GENESIS
        for number, raw in enumerate(lines):
            entry = _parse(raw, f"line {number + 1}")
            if entry.n != number or entry.prev != prev or entry.hash != entry.digest():
                raise LedgerError(f"erasure ledger {self.path}: the hash chain breaks at line {number + 1}")
            out.append(entry)
            prev = entry.hash
        return out

    def _key(self, entries: Iterable[Erasure | _Clear]) -> ErasureKey | None:
        wraps = [base64.b64decode(e.wrapped) for e in entries if isinstance(e, Erasure) and e.wrapped]
        if not wraps:
            return None
        try:
            return self._keys.unwrap(wraps[::-1])
        except SealError:
            raise LedgerError(
                f"erasure ledger {self.path}: its key opens under no master key this process holds"
            ) from None

    def _prepare(self, chain: LockedChain, *, create: bool) -> tuple[ErasureKey | None, int]:
        """Under the lock: the file's key and how many clear lines were rewritten; a key is made when ``create``."""
        first = chain.first()
        if self._known is not None and first == self._known[0]:
            return self._known[1], 0
        entries = self._checked(chain.lines())
        key, clear = self._key(entries), sum(isinstance(e, _Clear) for e in entries)
        made: str | None = None
        if key is None and (clear or create):
            key, wrapped = self._keys.create()
            made = base64.b64encode(wrapped).decode()
        if key is None:
            return None, 0
        now = datetime.now(timezone.utc)
        if clear:
            lines = _rewritten(entries, key)
            if made is not None:
                lines.append(_entry(len(lines), "key", now, lines[-1].hash, wrapped=made))
            chain.replace([e.line() for e in lines])
        elif made is not None:
            chain.append(_entry(len(entries), "key", now, entries[-1].hash if entries else GENESIS, wrapped=made).line())
        self._known = (chain.first() or b"", key)
        return key, clear

    def convert(self) -> int:
        """Rewrite the lines written before version 2 (ids in clear) as keyed entries; returns how many.

        Cheap when there is nothing to do (one line read): a writer of this version rewrites every
        clear line before its first append, so a ledger whose first line is new has no clear line.
        """
        if not self.exists():
            return 0
        with self._file.locked() as chain:
            first = chain.first()
            if first is None or isinstance(_parse(first, "line 1"), Erasure):
                return 0
            return self._prepare(chain, create=False)[1]

    def rewrap_key(self, new: TenantKeyWrapper) -> bool:
        """Wrap the ledger key under a new master key (``faceward keys rotate-master``); False if it already is."""
        if not self.exists():
            self._keys = ErasureKeyring(new)
            return False
        with self._file.locked() as chain:
            self._prepare(chain, create=False)
            entries = self._checked(chain.lines())
            wraps = [base64.b64decode(e.wrapped) for e in entries if isinstance(e, Erasure) and e.wrapped][::-1]
            try:
                wrapped = self._keys.rewrapped(wraps, new) if wraps else None
            except SealError as exc:
                raise LedgerError(f"erasure ledger {self.path}: {exc}") from None
            if wrapped is not None:
                last = entries[-1]
                entry = _entry(last.n + 1, "key", datetime.now(timezone.utc), last.hash, wrapped=base64.b64encode(wrapped).decode())
                chain.append(entry.line())
        self._keys = ErasureKeyring(new)
        return wrapped is not None

    # -- writing --------------------------------------------------------------------

    def append(self, kind: str, tenant_id: str, subject_id: str | None = None, *, at: datetime | None = None) -> Erasure:
        """Add one erasure and fsync it; returns the entry. ``kind`` is "subject" or "tenant"."""
        if kind not in KINDS:
            raise ValueError(f"unknown erasure kind {kind!r}")
        if (kind == "subject") != (subject_id is not None):
            raise ValueError("a subject erasure names its subject; a tenant erasure does not")
        moment = at or datetime.now(timezone.utc)
        # A torn last line (power cut mid-write) is cut off by the lock: it was never acknowledged.
        with self._file.locked() as chain:
            key, _ = self._prepare(chain, create=True)
            if key is None:
                raise LedgerError(f"erasure ledger {self.path}: no key")  # made by _prepare: never
            ref = key.subject(tenant_id, subject_id) if subject_id is not None else key.tenant(tenant_id)
            last = chain.last()
            previous = _parse(last, "last entry") if last is not None else None
            n, prev = (previous.n + 1, previous.hash) if previous else (0, GENESIS)
            entry = _entry(n, kind, moment, prev, ref=ref)
            chain.append(entry.line())
        return entry

    def record_subject(self, tenant_id: str, subject_id: str, *, at: datetime | None = None) -> Erasure:
        return self.append("subject", tenant_id, subject_id, at=at)

    def record_tenant(self, tenant_id: str, *, at: datetime | None = None) -> Erasure:
        return self.append("tenant", tenant_id, at=at)

    # -- reading --------------------------------------------------------------------

    def entries(self) -> list[Erasure]:
        """Every entry (the key's too), the hash chain checked; an empty list if there is no ledger yet.

        Clear lines of the older format are rewritten first. A last line without its newline (torn
        write) is ignored: it was never fsynced, so its erasure was never acknowledged.
        """
        entries = self._read()
        if any(isinstance(e, _Clear) for e in entries):
            with self._file.locked() as chain:
                self._known = None
                self._prepare(chain, create=False)
            entries = self._read()
        return [e for e in entries if isinstance(e, Erasure)]

    def _read(self) -> list[Erasure | _Clear]:
        try:
            return self._checked(self._file.lines())
        except OSError as exc:
            raise LedgerError(f"cannot read erasure ledger {self.path}: {exc.strerror or exc}") from None

    def head(self, entries: list[Erasure] | None = None) -> LedgerHead:
        entries = self.entries() if entries is None else entries
        return LedgerHead(len(entries), entries[-1].hash if entries else GENESIS)

    def check_extends(self, head: LedgerHead, entries: list[Erasure] | None = None) -> None:
        """Raise :class:`LedgerError` unless this ledger holds every entry it held at ``head``.

        A line rewritten from the older format matches the head it had then through ``was``.
        """
        entries = self.entries() if entries is None else entries
        if head.count == 0:
            return
        if len(entries) >= head.count:
            at = entries[head.count - 1]
            if at.hash == head.hash:
                return
            key = self._key(entries) if at.was else None
            if key is not None and at.was and hmac.compare_digest(at.was, key.former(head.hash)):
                return
        raise LedgerError(
            f"the erasure ledger {self.path} holds {len(entries)} entries and does not extend the "
            f"{head.count} it held when the backup was made: it is an older or another ledger. "
            "Restore the ledger from where it is kept beside the master key; restoring without it "
            "would bring erased subjects back"
        )

    def erased(self, entries: list[Erasure] | None = None) -> Erased:
        """The subjects and tenants the ledger lists, to be matched against ids."""
        entries = self.entries() if entries is None else entries
        listed = [e for e in entries if e.kind in KINDS and e.ref]
        key = self._key(entries) if listed else None
        return Erased(key, {e.ref: e.at for e in listed if e.kind == "subject" and e.ref},
                      {e.ref for e in listed if e.kind == "tenant" and e.ref})


def _rewritten(entries: list[Erasure | _Clear], key: ErasureKey) -> list[Erasure]:
    """The chain with every clear line keyed, and every line after the first one relinked; ``was`` keeps old heads."""
    out: list[Erasure] = []
    prev = GENESIS
    for entry in entries:
        if isinstance(entry, _Clear):
            ref = key.tenant(entry.tenant_id) if entry.subject_id is None else key.subject(entry.tenant_id, entry.subject_id)
            new = _entry(entry.n, entry.kind, entry.at, prev, ref=ref, was=key.former(entry.hash))
        elif entry.prev != prev:
            new = _entry(entry.n, entry.kind, entry.at, prev, ref=entry.ref, wrapped=entry.wrapped,
                         was=entry.was or key.former(entry.hash))
        else:
            new = entry
        out.append(new)
        prev = new.hash
    return out


__all__ = ["GENESIS", "Erased", "Erasure", "ErasureLedger", "LedgerError", "LedgerHead"]
