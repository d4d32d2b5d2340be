"""Backup files: one sealed container per backup, openable only with the master key.

The layout::

    b"FWBACKUP" | u32 header length | header (JSON, clear) | chunk* (u32 length | sealed chunk)

Each chunk of at most 4 MiB is AES-256-GCM under a fresh random backup key,
with ``aad("~backup", backup id, sha256(header), chunk number, "more"|"final")``
so the header cannot be edited and chunks cannot be reordered, dropped,
truncated or spliced from another backup. The backup key is wrapped by the
master key (``wrap_tenant_key`` under the pseudo-tenant ``~backup:<id>``; a KMS
wrapper works unchanged) and kept in the header: only the master key opens a
backup. What goes in (a consistent copy of the store) is :mod:`faceward.store.backup`'s.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any, BinaryIO

from faceward.durability import fsync_dir
from faceward.errors import FacewardError
from faceward.security.crypto import aad, new_key, open_sealed, seal
from faceward.security.errors import SealError
from faceward.security.kms import TenantKeyWrapper

MAGIC = b"FWBACKUP"
FORMAT = 1
CHUNK = 4 * 1024 * 1024
_LENGTH = struct.Struct("<I")
_SEAL_OVERHEAD = 1 + 12 + 16


class BackupError(FacewardError):
    """A backup cannot be made, read or restored: the message says why."""

    code = "backup_error"
    status = 500



def _key_owner(backup_id: str) -> str:
    return f"~backup:{backup_id}"


def _context(backup_id: str, header_digest: str) -> tuple[str, ...]:
    return ("~backup", backup_id, header_digest)


def _read_exact(source: BinaryIO, size: int, what: str) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise BackupError(f"the backup is cut short ({what})")
    return data


def seal_file(plain: Path, target: Path, keyring: TenantKeyWrapper, header: dict[str, Any]) -> int:
    """Write ``plain`` sealed to ``target`` atomically (temp file, fsync, rename), mode 0600; returns its size."""
    backup_id = str(header["backup_id"])
    key = new_key()
    header = {**header, "wrapped_key": base64.b64encode(keyring.wrap_tenant_key(_key_owner(backup_id), key)).decode()}
    head = json.dumps(header, sort_keys=True).encode()
    digest = hashlib.sha256(head).hexdigest()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out, plain.open("rb") as source:
            out.write(MAGIC + _LENGTH.pack(len(head)) + head)
            number = 0
            chunk = source.read(CHUNK)
            while True:
                following = source.read(CHUNK)
                final = not following
                sealed = seal_chunk(key, _context(backup_id, digest), number, final, chunk)
                out.write(_LENGTH.pack(len(sealed)) + sealed)
                if final:
                    break
                chunk, number = following, number + 1
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"cannot write backup {target}: {exc.strerror or exc}") from exc
    fsync_dir(target.parent)
    return target.stat().st_size


def read_header(path: Path) -> dict[str, Any]:
    """The backup's header (clear, authenticated only when its chunks are opened)."""
    try:
        with path.open("rb") as source:
            return _header(source)[0]
    except OSError as exc:
        raise BackupError(f"cannot read backup {path}: {exc.strerror or exc}") from exc


def _header(source: BinaryIO) -> tuple[dict[str, Any], str]:
    if source.read(len(MAGIC)) != MAGIC:
        raise BackupError("not a faceward backup")
    (length,) = _LENGTH.unpack(_read_exact(source, _LENGTH.size, "header length"))
    if length > 1 << 20:
        raise BackupError("the backup header is implausibly large")
    head = _read_exact(source, length, "header")
    try:
        header = json.loads(head)
    except ValueError:
        raise BackupError("the backup header is not JSON") from None
    if header.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {header.get('format')!r}")
    return header, hashlib.sha256(head).hexdigest()


def open_file(path: Path, target: Path, keyring: TenantKeyWrapper) -> dict[str, Any]:
    """Decrypt the backup at ``path`` into ``target`` (mode 0600); returns its header.

    Raises :class:`BackupError` for a wrong master key, tampering, truncation
    or a file that is not a backup.
    """
    try:
        source = path.open("rb")
    except OSError as exc:
        raise BackupError(f"cannot read backup {path}: {exc.strerror or exc}") from exc
    with source:
        header, digest = _header(source)
        backup_id = str(header["backup_id"])
        try:
            key = keyring.tenant_key(_key_owner(backup_id), base64.b64decode(header["wrapped_key"]))
        except (SealError, ValueError, KeyError):
            raise BackupError("this backup does not open with this master key") from None
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            number = 0
            while True:
                raw = source.read(_LENGTH.size)
                if len(raw) != _LENGTH.size:
                    raise BackupError("the backup is cut short (its final chunk is missing)")
                (length,) = _LENGTH.unpack(raw)
                if length > CHUNK + _SEAL_OVERHEAD:
                    raise BackupError("the backup is damaged (a chunk is too large)")
                sealed = _read_exact(source, length, f"chunk {number}")
                for final in (False, True):
                    try:
                        out.write(open_chunk(key, _context(backup_id, digest), number, final, sealed))
                        break
                    except SealError:
                        continue
                else:
                    raise BackupError(f"the backup is damaged or was altered (chunk {number} fails to open)")
                if final:
                    if source.read(1):
                        raise BackupError("the backup has data after its final chunk")
                    break
                number += 1
            out.flush()
            os.fsync(out.fileno())
    return header


# -- the two databases --------------------------------------------------------------------


def seal_chunk(key: bytes, context: tuple[str, ...], number: int, final: bool, data: bytes) -> bytes:
    """One chunk of a sealed stream; its associated data ``aad(*context, number, "more"|"final")`` fixes its place."""
    return seal(key, data, aad(*context, str(number), "final" if final else "more"))


def open_chunk(key: bytes, context: tuple[str, ...], number: int, final: bool, sealed: bytes) -> bytes:
    """Open a chunk sealed by :func:`seal_chunk` (:class:`SealError` if anything differs)."""
    return open_sealed(key, sealed, aad(*context, str(number), "final" if final else "more"))


__all__ = ["CHUNK", "FORMAT", "MAGIC", "BackupError", "open_chunk", "open_file", "read_header", "seal_chunk", "seal_file"]
