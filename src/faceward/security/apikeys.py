"""API key tokens: ``fw_<keyid>_<secret>``, kept in the database only as a keyed hash.

* ``keyid`` is 16 base62 characters (95 random bits): the public handle of the
  key, its primary key in ``api_keys``, and what the audit log names.
* ``secret`` is 43 base62 characters encoding 256 random bits.
* Neither part contains ``_``, so a token splits unambiguously.

The database stores ``HMAC-SHA256(pepper, keyid ":" secret)`` where the pepper
is derived (HKDF) from the tenant's data key, itself wrapped by the master key.
A stolen database therefore holds nothing that can be checked offline, and a
master key rotation (which re-wraps tenant keys but keeps them) leaves every
API key valid. A plain HMAC is one microsecond, fast enough per request; slow
hashes (scrypt) exist to stretch low-entropy passwords, which these are not.

Hashes are compared with :func:`hmac.compare_digest`, and a token whose key id
is unknown is compared against a dummy hash too, so the secret check takes the
same time whichever way it fails.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from faceward.security.crypto import TEXT_BUCKET, aad, open_sealed, seal
from faceward.security.permissions import Role

if TYPE_CHECKING:
    from faceward.store.records import ApiKeyRecord

PREFIX = "fw"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
KEY_ID_CHARS = 16
SECRET_BYTES = 32
SECRET_CHARS = 43  # ceil(256 / log2(62))
MAX_TOKEN_CHARS = 128
_TOKEN = re.compile(rf"^{PREFIX}_([0-9A-Za-z]{{{KEY_ID_CHARS}}})_([0-9A-Za-z]{{{SECRET_CHARS}}})$")
_KEY_ID = re.compile(rf"^[0-9A-Za-z]{{{KEY_ID_CHARS}}}$")


def base62(data: bytes, width: int) -> str:
    """Fixed-width base62 of ``data`` (big-endian), left-padded with ``0``."""
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(ALPHABET[rest])
    text = "".join(reversed(digits)).rjust(width, "0")
    if len(text) > width:
        raise ValueError("value does not fit the width")
    return text


def new_key_id() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(KEY_ID_CHARS))


def new_secret() -> str:
    return base62(secrets.token_bytes(SECRET_BYTES), SECRET_CHARS)


@dataclass(frozen=True)
class Token:
    """A parsed API key. ``repr`` never shows the secret."""

    key_id: str
    secret: str

    def __str__(self) -> str:
        return f"{PREFIX}_{self.key_id}_{self.secret}"

    def __repr__(self) -> str:
        return f"Token(key_id={self.key_id!r}, secret='**********')"


def new_token() -> Token:
    return Token(new_key_id(), new_secret())


def parse_token(text: str | None) -> Token | None:
    """The token in ``text``, or None when it is missing or malformed."""
    if not text or len(text) > MAX_TOKEN_CHARS:
        return None
    match = _TOKEN.match(text.strip())
    return Token(match.group(1), match.group(2)) if match else None


def is_key_id(text: str) -> bool:
    return bool(_KEY_ID.match(text))


def pepper(tenant_key: bytes) -> bytes:
    """The HMAC key for this tenant's API key hashes, derived from its data key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"faceward/api-key-hash/v1").derive(tenant_key)


def hash_token(pepper_key: bytes, token: Token) -> bytes:
    return hmac.new(pepper_key, f"{token.key_id}:{token.secret}".encode(), hashlib.sha256).digest()


_DUMMY_PEPPER = secrets.token_bytes(32)
_DUMMY_HASH = secrets.token_bytes(32)


def matches(pepper_key: bytes | None, token: Token, stored: bytes | None) -> bool:
    """Constant-time check of ``token`` against a stored hash.

    With no pepper or no stored hash (unknown key id, shredded tenant) the same
    HMAC and comparison run against dummies and the answer is False.
    """
    candidate = hash_token(pepper_key if pepper_key is not None else _DUMMY_PEPPER, token)
    expected = stored if stored is not None and pepper_key is not None else _DUMMY_HASH
    same = hmac.compare_digest(candidate, expected)
    return same and stored is not None and pepper_key is not None


def seal_role(tenant_key: bytes, tenant_id: str, key_id: str, role: Role) -> bytes:
    return seal(tenant_key, role.value.encode(), aad(tenant_id, "api_keys", key_id, "role"), pad_to=TEXT_BUCKET)


def open_role(tenant_key: bytes, record: ApiKeyRecord) -> Role:
    return Role(open_sealed(tenant_key, record.role_sealed, aad(record.tenant_id, "api_keys", record.id, "role")).decode())


def seal_label(tenant_key: bytes, tenant_id: str, key_id: str, label: str) -> bytes:
    return seal(tenant_key, label.encode(), aad(tenant_id, "api_keys", key_id, "label"), pad_to=TEXT_BUCKET)


def open_label(tenant_key: bytes, record: ApiKeyRecord) -> str:
    return open_sealed(tenant_key, record.label_sealed, aad(record.tenant_id, "api_keys", record.id, "label")).decode()


__all__ = [
    "PREFIX", "Token", "base62", "hash_token", "is_key_id", "matches", "new_key_id", "new_secret", "new_token",
    "open_label", "open_role", "parse_token", "pepper", "seal_label", "seal_role",
]
