"""The erasure ledger's key: its entries are keyed hashes of who was erased, never the ids.

The erasure ledger (:mod:`faceward.store.ledger`) lists erased tenants and subjects so that a
restored backup can erase them again. Each entry holds a ``ref``: HMAC-SHA256, under a key derived
(HKDF) from the ledger key, of the tenant id or of the tenant-scoped subject id. Re-applying the
ledger hashes the candidates and compares, so a reader of the ledger alone, or of the ledger and an
old backup, cannot tell whose erasure an entry is.

The ledger key is random and wrapped by the master key (any
:class:`~faceward.security.kms.TenantKeyWrapper`: a key file or a PKCS#11 token), bound to the id
``erasure-ledger``, which no tenant id can take. It is not derived from the master key itself: a
token never lets its key out, and a master-key rotation must not change what an entry matches, so
rotation re-wraps the same key (as the operator log's key). The wrap is kept in the ledger itself,
so the ledger and its key cannot be parted.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from faceward.security.crypto import new_key
from faceward.security.errors import SealError
from faceward.security.kms import TenantKeyWrapper

KEY_ID = "erasure-ledger"
"""What the ledger key's wrap is bound to: no tenant id has this form (theirs are ``t_`` and hex)."""
INFO = b"faceward/erasure-ledger/v1"


class ErasureKey:
    """The ledger key, opened: the refs of ids, and of the hashes of lines it rewrote."""

    def __init__(self, ledger_key: bytes) -> None:
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(ledger_key)

    def __repr__(self) -> str:
        return "ErasureKey(**********)"

    def _mac(self, *parts: str) -> str:
        return hmac.new(self._key, "\x00".join(parts).encode(), hashlib.sha256).hexdigest()

    def subject(self, tenant_id: str, subject_id: str) -> str:
        return self._mac("subject", tenant_id, subject_id)

    def tenant(self, tenant_id: str) -> str:
        return self._mac("tenant", tenant_id)

    def former(self, line_hash: str) -> str:
        """A rewritten line's old hash, keyed: a backup's recorded head is found without the old line's ids."""
        return self._mac("was", line_hash)


class ErasureKeyring:
    """Makes, opens and re-wraps the ledger key under the master key."""

    def __init__(self, keyring: TenantKeyWrapper) -> None:
        self._keyring = keyring

    def create(self) -> tuple[ErasureKey, bytes]:
        """A new ledger key and its wrap."""
        key = new_key()
        return ErasureKey(key), self._keyring.wrap_tenant_key(KEY_ID, key)

    def _raw(self, wraps: Sequence[bytes], keyring: TenantKeyWrapper) -> bytes:
        for wrapped in wraps:
            try:
                return keyring.tenant_key(KEY_ID, wrapped)
            except SealError:
                continue
        raise SealError("the erasure ledger's key opens under no master key this process holds")

    def unwrap(self, wraps: Sequence[bytes]) -> ErasureKey:
        """The key from its wraps, newest first (an older wrap opens while a rotation runs); :class:`SealError` if none opens."""
        return ErasureKey(self._raw(wraps, self._keyring))

    def rewrapped(self, wraps: Sequence[bytes], new: TenantKeyWrapper) -> bytes | None:
        """The key wrapped under ``new``; None when its newest wrap already opens under ``new``."""
        try:
            new.tenant_key(KEY_ID, wraps[0])
            return None
        except SealError:
            pass
        key = self._raw(wraps, self._keyring)
        wrapped = new.wrap_tenant_key(KEY_ID, key)
        if new.tenant_key(KEY_ID, wrapped) != key:
            raise SealError("the new master key does not open what it wrapped")
        return wrapped


__all__ = ["ErasureKey", "ErasureKeyring", "INFO", "KEY_ID"]
