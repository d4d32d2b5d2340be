"""Backup retention: keep the newest ``keep`` backups in a folder and none older than ``max_age``.

A backup made before an erasure still holds the erased subject (sealed, with its wrapped key):
restore erases it again from the ledger, but the file itself lives on until it is deleted. Pruning
bounds that: with ``--max-age 30`` nobody erased today is in any backup 30 days from now. Only
files whose header reads as a faceward backup are ever considered; the backup just made is never
removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from faceward.durability import fsync_dir
from faceward.errors import InvalidInput
from faceward.store.backup import BackupError, read_header


@dataclass(frozen=True)
class KeptBackup:
    path: Path
    backup_id: str
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "backup_id": self.backup_id, "created_at": self.created_at.isoformat()}


def backups_in(folder: Path) -> list[KeptBackup]:
    """The faceward backups directly in ``folder``, newest first (other files are left alone)."""
    found = []
    for path in folder.iterdir():
        if not path.is_file() or path.name.startswith("."):
            continue
        try:
            header = read_header(path)
            found.append(KeptBackup(path, str(header["backup_id"]), datetime.fromisoformat(header["created_at"])))
        except (BackupError, KeyError, ValueError):
            continue
    return sorted(found, key=lambda b: b.created_at, reverse=True)


def prune_backups(
    folder: Path, *, keep: int | None, max_age: timedelta | None, now: datetime, protect: Path | None = None
) -> list[KeptBackup]:
    """Delete the backups in ``folder`` past the newest ``keep`` or older than ``max_age``; returns them.

    ``protect`` (the backup just written) is never deleted and counts towards ``keep``.
    """
    if keep is not None and keep < 1:
        raise InvalidInput("--keep must be at least 1")
    if max_age is not None and max_age <= timedelta(0):
        raise InvalidInput("--max-age must be a positive number of days")
    if keep is None and max_age is None:
        return []
    removed = []
    for rank, item in enumerate(backups_in(folder)):
        if protect is not None and item.path.resolve() == protect.resolve():
            continue
        too_many = keep is not None and rank >= keep
        too_old = max_age is not None and now - item.created_at > max_age
        if too_many or too_old:
            item.path.unlink(missing_ok=True)
            removed.append(item)
    if removed:
        fsync_dir(folder)
    return removed


__all__ = ["KeptBackup", "backups_in", "prune_backups"]
