"""Append-only, hash-chained JSON-lines files that several processes share.

The erasure ledger (:mod:`faceward.store.ledger`) and the operator audit log
(:mod:`faceward.security.operator_log`) are such files: one JSON object per
line, each carrying ``prev`` (the previous line's ``hash``, 64 zeros for the
first) and its own ``hash``. Appends take an exclusive ``flock`` and ``fsync``
before they return; a torn last line (power cut mid-write) was never
acknowledged and is dropped by the next append and ignored by readers.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from faceward.durability import fsync_dir

GENESIS = "0" * 64
_TAIL = 8192


class ChainFile:
    """The file at ``path`` (created on the first append, mode 0600)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.is_file()

    @contextmanager
    def _locked(self) -> Iterator[int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if created:
                fsync_dir(self.path.parent)
            yield fd
        finally:
            os.close(fd)  # closing releases the lock

    @staticmethod
    def _last_line(fd: int) -> bytes | None:
        size = os.fstat(fd).st_size
        if size == 0:
            return None
        start = max(0, size - _TAIL)
        while True:
            tail = os.pread(fd, size - start, start)
            body = tail[:-1] if tail.endswith(b"\n") else tail
            cut = body.rfind(b"\n")
            if cut >= 0 or start == 0:
                return body[cut + 1 :]
            start = max(0, start - _TAIL)

    def append(self, make_line: Callable[[bytes | None], bytes]) -> bytes:
        """Append ``make_line(last complete line or None)`` (one line, newline included) and fsync; returns it."""
        with self._locked() as fd:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                body = os.pread(fd, size, 0)
                os.ftruncate(fd, body.rfind(b"\n") + 1)
            line = make_line(self._last_line(fd))
            os.write(fd, line)
            os.fsync(fd)
        return line

    def lines(self) -> list[bytes]:
        """Every complete line (an empty list when the file does not exist); raises ``OSError`` otherwise."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return data.split(b"\n")[:-1]  # the part after the last newline is empty or torn


__all__ = ["GENESIS", "ChainFile"]
