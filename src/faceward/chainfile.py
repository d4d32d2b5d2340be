"""Append-only, hash-chained JSON-lines files that several processes share.

The erasure ledger (:mod:`faceward.store.ledger`) and the operator audit log
(:mod:`faceward.security.operator_log`) are such files: one JSON object per
line, each carrying ``prev`` (the previous line's ``hash``, 64 zeros for the
first) and its own ``hash``. Appends take an exclusive ``flock`` and ``fsync``
before they return; a torn last line (power cut mid-write) was never
acknowledged and is dropped by the next writer and ignored by readers.

A file can also be replaced whole under its lock (the ledger rewrites lines of
an older format): the new file is written beside it, fsynced, locked and then
renamed over it, and a writer that was waiting on the old file's lock sees it
was replaced and locks the new one instead.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from faceward.durability import fsync_dir

GENESIS = "0" * 64
_TAIL = 8192


class LockedChain:
    """A chain file held under its exclusive lock (:meth:`ChainFile.locked`)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    def _size(self) -> int:
        return os.fstat(self._fd).st_size

    def _cut_torn(self) -> None:
        size = self._size()
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            body = os.pread(self._fd, size, 0)
            os.ftruncate(self._fd, body.rfind(b"\n") + 1)

    def first(self) -> bytes | None:
        """The first line (without its newline), or None when the file is empty."""
        size, read = self._size(), _TAIL
        while True:
            head = os.pread(self._fd, min(size, read), 0)
            cut = head.find(b"\n")
            if cut >= 0:
                return head[:cut]
            if read >= size:
                return None
            read *= 2

    def last(self) -> bytes | None:
        """The last line (without its newline), or None when the file is empty."""
        size = self._size()
        if size == 0:
            return None
        start = max(0, size - _TAIL)
        while True:
            tail = os.pread(self._fd, size - start, start)
            body = tail[:-1] if tail.endswith(b"\n") else tail
            cut = body.rfind(b"\n")
            if cut >= 0 or start == 0:
                return body[cut + 1 :]
            start = max(0, start - _TAIL)

    def lines(self) -> list[bytes]:
        return os.pread(self._fd, self._size(), 0).split(b"\n")[:-1]

    def append(self, line: bytes) -> None:
        """Append one line (newline included) and fsync it."""
        os.write(self._fd, line)
        os.fsync(self._fd)

    def replace(self, lines: Sequence[bytes]) -> None:
        """Replace the whole file by ``lines`` (each with its newline), atomically and durably; the lock stays held."""
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temp.unlink(missing_ok=True)  # left by a crash of this pid's predecessor
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            # Locked before it takes the name: a process that opens the new file must wait for us.
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, b"".join(lines))
            os.fsync(fd)
            os.replace(temp, self.path)
        except BaseException:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        fsync_dir(self.path.parent)
        old, self._fd = self._fd, fd
        os.close(old)  # waiters on the old file wake, see it was replaced, and queue on this one


class ChainFile:
    """The file at ``path`` (created on the first append, mode 0600)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.is_file()

    def _is_current(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    @contextmanager
    def locked(self) -> Iterator[LockedChain]:
        """The file under an exclusive lock, a torn last line cut off (created if missing)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            chain = LockedChain(self.path, fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if not self._is_current(fd):
                    continue  # replaced while we waited: lock the file that holds the name now
                if created:
                    fsync_dir(self.path.parent)
                chain._cut_torn()
                yield chain
                return
            finally:
                os.close(chain._fd)  # closing releases the lock

    def append(self, make_line: Callable[[bytes | None], bytes]) -> bytes:
        """Append ``make_line(last complete line or None)`` (one line, newline included) and fsync; returns it."""
        with self.locked() as chain:
            line = make_line(chain.last())
            chain.append(line)
        return line

    def lines(self) -> list[bytes]:
        """Every complete line (an empty list when the file does not exist); raises ``OSError`` otherwise."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return data.split(b"\n")[:-1]  # the part after the last newline is empty or torn


__all__ = ["GENESIS", "ChainFile", "LockedChain"]
