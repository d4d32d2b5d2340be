"""The operator audit log: acts on tenants themselves, kept outside every tenant so it outlives them.

A tenant's own audit chain (:mod:`faceward.security.audit`) is sealed under the
tenant's key and goes when the tenant is crypto-shredded. Creating, suspending,
resuming and deleting a tenant, rotating the master key and restoring a backup
are the host operator's acts on tenants, so they are written here: a
hash-chained JSON-lines file in the home (:class:`~faceward.chainfile.ChainFile`),
one line per act::

    {"n", "at", "actor": "operator", "user", "command", "action", "tenant_id", "details", "prev", "hash"}

``hash = sha256(prev || canonical JSON of the other fields)``. It holds ids,
counts and the system user, never a tenant's name: a name is sealed under the
key a deletion destroys. ``faceward audit verify --operator`` checks the chain.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from faceward.chainfile import GENESIS, ChainFile
from faceward.errors import FacewardError


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


def _digest(prev: str, body: dict[str, Any]) -> str:
    return hashlib.sha256(prev.encode() + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def host_user() -> str:
    """The system user running this process (``unknown`` when the platform cannot tell)."""
    try:
        return getpass.getuser()
    except Exception:  # no login name in a bare container: still audit the act
        return "unknown"


class OperatorLog:
    """The operator audit log at ``path``."""

    FILE_NAME = "operator-audit.jsonl"

    def __init__(self, path: Path | str, *, command: str = "faceward") -> None:
        self._file = ChainFile(path)
        self.path = self._file.path
        self.command = command  # what this process was started as: `serve`, `tenant delete`, ...

    def append(
        self, action: str, *, tenant_id: str | None, details: dict[str, Any] | None = None,
        command: str | None = None, user: str | None = None, at: datetime | None = None,
    ) -> OperatorEntry:
        """Write one act and fsync it (the command defaults to this process's)."""
        moment = at or datetime.now(timezone.utc)
        made: list[OperatorEntry] = []

        def line(last: bytes | None) -> bytes:
            previous = self._parse(last, "last entry") if last is not None else None
            n, prev = (previous.n + 1, previous.hash) if previous else (0, GENESIS)
            draft = OperatorEntry(n, moment, user or host_user(), command or self.command, action, tenant_id, dict(details or {}), prev, "")
            body = draft.body()
            entry = OperatorEntry(**{**draft.__dict__, "hash": _digest(prev, body)})
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
        """Every entry, the hash chain checked (:class:`OperatorLogError` where it breaks)."""
        try:
            lines = self._file.lines()
        except OSError as exc:
            raise OperatorLogError(f"cannot read the operator audit log {self.path}: {exc.strerror or exc}") from None
        out: list[OperatorEntry] = []
        prev = GENESIS
        for number, raw in enumerate(lines):
            entry = self._parse(raw, f"line {number + 1}")
            if entry.n != number or entry.prev != prev or entry.hash != _digest(prev, entry.body()):
                raise OperatorLogError(f"operator audit log {self.path}: the hash chain breaks at line {number + 1}")
            out.append(entry)
            prev = entry.hash
        return out


__all__ = ["OperatorEntry", "OperatorLog", "OperatorLogError", "host_user"]
