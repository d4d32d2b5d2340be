"""The master key in a file, rotated online: servers follow the key file instead of holding one key for life.

A server started with ``$FACEWARD_HOME/master.key`` (or ``FACEWARD_MASTER_KEY_FILE``) holds that key,
and also watches two files, read only when they matter:

* ``<key file>.next`` - the key an online rotation (``faceward keys rotate-master --online``) is
  moving to. While it exists, every new wrap is under it, and an unwrap that the current key
  refuses is tried under it: tenants already re-wrapped keep opening while the rotation runs.
* ``<key file>`` itself - when the rotation ends it becomes the new key (an atomic rename of
  ``.next``; the old key is kept as ``<key file>.retired-<UTC time>`` for the backups it wrapped).
  A server that never saw ``.next`` finds the new key here on its first refused unwrap.

Every key a server has seen opens what it wrapped, so no request fails during or after a rotation,
and a server started after it needs only the new key file. Both files must be mode 0600, as the key
file must. A key given in the environment (``FACEWARD_MASTER_KEY``) cannot be followed: rotating it
still needs a restart.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from faceward.security.crypto import Keyring, aad, load_master_key, open_sealed, seal, write_master_key_file
from faceward.security.errors import MasterKeyError, SealError

NEXT_SUFFIX = ".next"


def next_key_path(key_file: Path) -> Path:
    return key_file.with_name(key_file.name + NEXT_SUFFIX)


class FileKeyring:
    """A :class:`~faceward.security.kms.TenantKeyWrapper` over a key file that an online rotation may replace."""

    def __init__(self, master_key: bytes, key_file: Path) -> None:
        self._keys = [master_key]  # every key seen, oldest first
        self.key_file = key_file
        self._lock = threading.Lock()

    @property
    def _master(self) -> bytes:
        """The key that wraps now (the CLI compares a new key with it)."""
        return self._current()

    def _read(self, path: Path) -> bytes | None:
        if not path.exists():
            return None
        try:
            key = load_master_key(None, path)
        except MasterKeyError:
            return None  # a half-written or unreadable file is not a key yet
        with self._lock:
            if key not in self._keys:
                self._keys.append(key)
        return key

    def _current(self) -> bytes:
        return self._read(next_key_path(self.key_file)) or self._keys[-1]

    def wrap_tenant_key(self, tenant_id: str, key: bytes) -> bytes:
        return seal(self._current(), key, aad(tenant_id, "tenant-key"))

    def tenant_key(self, tenant_id: str, wrapped: bytes) -> bytes:
        for refresh in (False, True):
            if refresh:  # a rotation may have begun or ended since: look at both files once
                self._read(next_key_path(self.key_file))
                self._read(self.key_file)
            for master in reversed(list(self._keys)):
                try:
                    return open_sealed(master, wrapped, aad(tenant_id, "tenant-key"))
                except SealError:
                    continue
        raise SealError("the wrapped tenant key opens under no master key this server knows")


def rotate_online(keyring: FileKeyring, rewrap: Callable[[Keyring], dict[str, int]]) -> dict[str, Any]:
    """``faceward keys rotate-master --online``: ``<key file>.next`` (made, or kept from an interrupted run),
    every tenant key re-wrapped under it by ``rewrap`` (``AccountService.rotate_master``: audited in the
    operator chain), then it replaces the key file; the old key stays as ``<key file>.retired-<UTC time>``."""
    path = keyring.key_file
    successor = next_key_path(path)
    if not successor.exists():
        write_master_key_file(successor)
    counts = rewrap(Keyring(load_master_key(None, successor)))
    retired = path.with_name(f"{path.name}.retired-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}")
    os.link(path, retired)  # the old key, same mode, for the backups it wrapped
    os.replace(successor, path)  # atomic: a server reading the key file sees the old key or the new one
    return {**counts, "key_file": str(path), "retired_key_file": str(retired)}


__all__ = ["FileKeyring", "NEXT_SUFFIX", "next_key_path", "rotate_online"]
