"""Envelope encryption: master key -> tenant data key -> subject key -> sealed values.

AES-256-GCM everywhere. Associated data binds each ciphertext to its tenant,
table, column and row, so a sealed value copied into another row (or tenant)
fails to open. Erasing a subject deletes its wrapped key, which makes every
copy of its sealed data, backups included, unreadable once the key is gone.
"""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from faceward.security.errors import MasterKeyError, SealError

KEY_BYTES = 32
NONCE_BYTES = 12
VERSION = b"\x01"
PADDED = b"\x02"  # the plaintext is padded to a bucket; the version byte is authenticated too
TEXT_BUCKET = 256  # names, references, labels, roles, notes: their length must not show
AUDIT_BUCKET = 1024  # audit payloads: a search, an enrollment, a review and an auth failure look alike


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def aad(tenant_id: str, *parts: str) -> bytes:
    return "|".join((tenant_id, *parts)).encode()


def bucket(length: int, minimum: int) -> int:
    """The padded length of ``length`` bytes: ``minimum``, doubled until it holds them."""
    size = minimum
    while size < length:
        size *= 2
    return size


def seal(key: bytes, plaintext: bytes, associated: bytes, *, pad_to: int = 0) -> bytes:
    """AES-256-GCM of ``plaintext``. With ``pad_to``, the plaintext is first padded (0x80, then zeros)
    to :func:`bucket` of its length, so the sealed length tells only its bucket (decision 003)."""
    nonce = os.urandom(NONCE_BYTES)
    if pad_to <= 0:
        return VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, associated)
    padded = plaintext + b"\x80"
    padded += bytes(bucket(len(padded), pad_to) - len(padded))
    return PADDED + nonce + AESGCM(key).encrypt(nonce, padded, PADDED + associated)


def open_sealed(key: bytes, sealed: bytes, associated: bytes) -> bytes:
    """The plaintext of :func:`seal` (padded or not), or :class:`SealError`."""
    version = sealed[:1]
    if len(sealed) < 1 + NONCE_BYTES + 16 or version not in (VERSION, PADDED):
        raise SealError("sealed value is malformed")
    try:
        plain = AESGCM(key).decrypt(sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :],
                                    associated if version == VERSION else PADDED + associated)
    except InvalidTag:
        raise SealError("sealed value failed authentication") from None
    if version == VERSION:
        return plain
    end = plain.rstrip(b"\x00")
    if not end.endswith(b"\x80"):
        raise SealError("sealed value is malformed")
    return end[:-1]


def _is_placeholder(key: bytes) -> bool:
    # All one byte, a repeating short pattern, or ASCII text: typed by a person, not generated.
    if len(set(key)) < 8:
        return True
    if all(32 <= b < 127 for b in key):
        return True
    return any(key == key[:n] * (KEY_BYTES // n) for n in (1, 2, 4, 8, 16))


PLACEHOLDERS = {"changeme", "change-me", "secret", "password", "placeholder", "xxx", "todo", "example"}


def parse_master_key(text: str, *, source: str) -> bytes:
    value = text.strip()
    if not value or value.lower() in PLACEHOLDERS or value.lower().startswith(("change", "replace", "your")):
        raise MasterKeyError(f"the master key from {source} is a placeholder; generate one with `faceward init`")
    try:
        key = base64.b64decode(value, validate=True)
    except ValueError:
        raise MasterKeyError(f"the master key from {source} is not base64") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyError(f"the master key from {source} is {len(key)} bytes; it must be {KEY_BYTES}")
    if _is_placeholder(key):
        raise MasterKeyError(f"the master key from {source} has no entropy (a placeholder); generate a real one")
    return key


def load_master_key(env_value: str | None, key_file: Path | None) -> bytes:
    """The master key from ``FACEWARD_MASTER_KEY`` or ``FACEWARD_MASTER_KEY_FILE``; never a default."""
    if env_value:
        return parse_master_key(env_value, source="FACEWARD_MASTER_KEY")
    if key_file is None:
        raise MasterKeyError("no master key: set FACEWARD_MASTER_KEY_FILE or FACEWARD_MASTER_KEY (run `faceward init`)")
    try:
        mode = key_file.stat().st_mode
        text = key_file.read_text()
    except OSError as exc:
        raise MasterKeyError(f"cannot read master key file {key_file}: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MasterKeyError(f"master key file {key_file} is readable by others; chmod 600 it")
    return parse_master_key(text, source=str(key_file))


def write_master_key_file(path: Path) -> bytes:
    """Create a new master key file, mode 0600, refusing to overwrite one."""
    key = new_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(key).decode() + "\n")
    return key


class Keyring:
    """Wraps and unwraps the per-tenant and per-subject data keys."""

    def __init__(self, master_key: bytes) -> None:
        self._master = master_key

    def wrap_tenant_key(self, tenant_id: str, key: bytes) -> bytes:
        return seal(self._master, key, aad(tenant_id, "tenant-key"))

    def tenant_key(self, tenant_id: str, wrapped: bytes) -> bytes:
        return open_sealed(self._master, wrapped, aad(tenant_id, "tenant-key"))

    @staticmethod
    def wrap_subject_key(tenant_key: bytes, tenant_id: str, subject_id: str, key: bytes) -> bytes:
        return seal(tenant_key, key, aad(tenant_id, "subject-key", subject_id))

    @staticmethod
    def subject_key(tenant_key: bytes, tenant_id: str, subject_id: str, wrapped: bytes) -> bytes:
        return open_sealed(tenant_key, wrapped, aad(tenant_id, "subject-key", subject_id))

    def rewrap(self, tenant_id: str, wrapped: bytes, new_master: Keyring) -> bytes:
        return new_master.wrap_tenant_key(tenant_id, self.tenant_key(tenant_id, wrapped))
