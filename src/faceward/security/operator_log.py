"""The operator audit log: acts on tenants themselves, kept outside every tenant so it outlives them.

A tenant's own audit chain (:mod:`faceward.security.audit`) is sealed under the
tenant's key and goes when the tenant is crypto-shredded. Creating, suspending,
resuming and deleting a tenant, rotating the master key and restoring a backup
are the host operator's acts on tenants, so they are written here: a
hash-chained JSON-lines file in the home (:class:`~faceward.chainfile.ChainFile`),
one line per act::

    {"n", "at", "actor": "operator", "user", "command", "action", "tenant_id", "details", "prev", "hash"}

``hash = HMAC-SHA256(log key, prev || canonical JSON of the other fields)``. The
log key is a random 256-bit key wrapped by the master key (file or PKCS#11 token,
bound to the id ``operator-log``, never a tenant's) in ``operator-audit.key``
beside the log, so someone who can write the home but does not hold the master
key cannot rewrite, reorder, cut out or append entries and recompute the chain:
the MACs would not verify. Master-key rotation re-wraps it. What the MAC cannot
show: the log and its key file deleted together (the chain then starts again at
entry 0 — keep a copy of the head elsewhere, as ``faceward audit verify --operator``
prints it), or the last entries cut off (the head printed earlier shows that too).

It holds ids, counts and the system user, never a tenant's name: a name is
sealed under the key a deletion destroys. ``faceward audit verify --operator``
checks the chain.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from faceward.chainfile import GENESIS, ChainFile
from faceward.durability import fsync_dir
from faceward.errors import FacewardError
from faceward.security.crypto import new_key
from faceward.security.errors import SealError
from faceward.security.kms import TenantKeyWrapper

KEY_ID = "operator-log"
"""What the log key's wrap is bound to: no tenant id has this form (theirs are ``t_`` and hex)."""


class OperatorLogError(FacewardError):
    code = "operator_log"
    status = 500


@dataclass(frozen=True)
class OperatorEntry:
    n: int
    at: datetime
    user: str
    command: str
    action: str
    tenant_id: str | None
    details: dict[str, Any]
    prev: str
    hash: str

    actor = "operator"

    def body(self) -> dict[str, Any]:
        return {
            "n": self.n, "at": self.at.isoformat(), "actor": self.actor, "user": self.user, "command": self.command,
            "action": self.action, "tenant_id": self.tenant_id, "details": self.details,
        }


def _digest(key: bytes, prev: str, body: dict[str, Any]) -> str:
    message = prev.encode() + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def host_user() -> str:
    """The system user running this process (``unknown`` when the platform cannot tell)."""
    try:
        return getpass.getuser()
    except Exception:  # no login name in a bare container: still audit the act
        return "unknown"


class OperatorLog:
    """The operator audit log at ``path``, MAC-chained under a key the master key ``keyring`` wraps."""

    FILE_NAME = "operator-audit.jsonl"

    def __init__(self, path: Path | str, *, keyring: TenantKeyWrapper, command: str = "faceward") -> None:
        self._file = ChainFile(path)
        self.path = self._file.path
        self.key_path = self.path.with_suffix(".key")
        self.command = command  # what this process was started as: `serve`, `tenant delete`, ...
        self._keyring = keyring
        self._key: bytes | None = None

    # -- the log key -------------------------------------------------------------------

    def _mac_key(self, *, create: bool) -> bytes:
        """The log key, unwrapped once; made (and its wrap written) with the log's first entry."""
        if self._key is not None:
            return self._key
        if not self.key_path.exists():
            if not create or self._file.lines():
                raise OperatorLogError(
                    f"operator audit log {self.path}: its key file {self.key_path.name} is missing, so no entry can be checked"
                )
            self._write_wrap(self._keyring.wrap_tenant_key(KEY_ID, new_key()), exclusive=True)
        try:
            self._key = self._keyring.tenant_key(KEY_ID, self.key_path.read_bytes())
        except SealError:
            raise OperatorLogError(
                f"operator audit log {self.path}: its key does not open under this master key"
            ) from None
        return self._key

    def _write_wrap(self, wrapped: bytes, *, exclusive: bool) -> None:
        """Write the wrapped key beside the log: a temporary file, fsynced, then linked (first key) or renamed."""
        self.key_path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.key_path.with_name(f".{self.key_path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, wrapped)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            if exclusive:
                try:
                    os.link(temp, self.key_path)  # atomic, and refuses to replace a key another process made first
                except FileExistsError:
                    pass
            else:
                os.replace(temp, self.key_path)
        finally:
            temp.unlink(missing_ok=True)
        fsync_dir(self.key_path.parent)

    def rewrap_key(self, new: TenantKeyWrapper) -> bool:
        """Wrap the log key under a new master key (``faceward keys rotate-master``); False if it already is.

        The key itself does not change, so every entry keeps verifying."""
        if not self.key_path.exists():
            self._keyring = new
            return False
        wrapped = self.key_path.read_bytes()
        try:
            key = self._keyring.tenant_key(KEY_ID, wrapped)
        except SealError:
            try:  # an interrupted rotation already moved it
                new.tenant_key(KEY_ID, wrapped)
            except SealError:
                raise OperatorLogError(f"operator audit log {self.path}: its key opens under neither master key") from None
            self._keyring, self._key = new, None
            return False
        rewrapped = new.wrap_tenant_key(KEY_ID, key)
        if new.tenant_key(KEY_ID, rewrapped) != key:
            raise OperatorLogError("the new master key does not open what it wrapped")
        self._write_wrap(rewrapped, exclusive=False)
        self._keyring, self._key = new, key
        return True

    # -- entries -----------------------------------------------------------------------

    def append(
        self, action: str, *, tenant_id: str | None, details: dict[str, Any] | None = None,
        command: str | None = None, user: str | None = None, at: datetime | None = None,
    ) -> OperatorEntry:
        """Write one act and fsync it (the command defaults to this process's)."""
        moment = at or datetime.now(timezone.utc)
        key = self._mac_key(create=True)
        made: list[OperatorEntry] = []

        def line(last: bytes | None) -> bytes:
            previous = self._parse(last, "last entry") if last is not None else None
            n, prev = (previous.n + 1, previous.hash) if previous else (0, GENESIS)
            draft = OperatorEntry(n, moment, user or host_user(), command or self.command, action, tenant_id, dict(details or {}), prev, "")
            body = draft.body()
            entry = OperatorEntry(**{**draft.__dict__, "hash": _digest(key, prev, body)})
            made.append(entry)
            return json.dumps({**body, "prev": prev, "hash": entry.hash}, sort_keys=True, separators=(",", ":")).encode() + b"\n"

        self._file.append(line)
        return made[0]

    @staticmethod
    def _parse(raw: bytes, where: str) -> OperatorEntry:
        try:
            data = json.loads(raw)
            return OperatorEntry(
                int(data["n"]), datetime.fromisoformat(data["at"]), str(data["user"]), str(data["command"]),
                str(data["action"]), None if data["tenant_id"] is None else str(data["tenant_id"]),
                dict(data["details"]), str(data["prev"]), str(data["hash"]),
            )
        except (ValueError, KeyError, TypeError):
            raise OperatorLogError(f"operator audit log {where}: not an entry") from None

    def entries(self) -> list[OperatorEntry]:
        """Every entry, the MAC chain checked (:class:`OperatorLogError` where it breaks)."""
        try:
            lines = self._file.lines()
        except OSError as exc:
            raise OperatorLogError(f"cannot read the operator audit log {self.path}: {exc.strerror or exc}") from None
        if not lines:
            return []
        key = self._mac_key(create=False)
        out: list[OperatorEntry] = []
        prev = GENESIS
        for number, raw in enumerate(lines):
            entry = self._parse(raw, f"line {number + 1}")
            if entry.n != number or entry.prev != prev or not hmac.compare_digest(entry.hash, _digest(key, prev, entry.body())):
                raise OperatorLogError(f"operator audit log {self.path}: the MAC chain breaks at line {number + 1}")
            out.append(entry)
            prev = entry.hash
        return out


__all__ = ["KEY_ID", "OperatorEntry", "OperatorLog", "OperatorLogError", "host_user"]
