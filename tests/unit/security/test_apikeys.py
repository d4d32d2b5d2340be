"""API key tokens: format, entropy, hash-only storage, constant-time checks."""

from __future__ import annotations

import hmac
import math
import os

import pytest

from faceward.security import apikeys
from faceward.security.apikeys import Token, hash_token, matches, new_token, parse_token, pepper


def test_format_and_round_trip() -> None:
    token = new_token()
    text = str(token)
    prefix, key_id, secret = text.split("_")
    assert prefix == "fw" and len(key_id) == 16 and len(secret) == 43
    assert parse_token(text) == token
    assert token.secret not in repr(token)


def test_secret_carries_256_bits() -> None:
    assert apikeys.SECRET_CHARS * math.log2(62) >= 256
    assert apikeys.base62(b"\xff" * 32, 43)  # the largest 256-bit value fits 43 characters
    secrets = {new_token().secret for _ in range(2000)}
    assert len(secrets) == 2000
    alphabet = set("".join(secrets))
    assert len(alphabet) == 62 and "_" not in alphabet


@pytest.mark.parametrize(
    "text",
    [None, "", "fw_", "fw_abc_def", "xx_" + "a" * 16 + "_" + "b" * 43, "fw_" + "a" * 16 + "_" + "b" * 42,
     "fw_" + "a" * 16 + "_" + "b" * 43 + "_", "fw_" + "a" * 15 + "-_" + "b" * 43, "fw_" + "a" * 200],
)
def test_malformed_tokens_are_refused(text: str | None) -> None:
    assert parse_token(text) is None


def test_hash_is_keyed_and_depends_on_both_parts() -> None:
    token = new_token()
    key = os.urandom(32)
    digest = hash_token(pepper(key), token)
    assert len(digest) == 32 and token.secret.encode() not in digest
    assert digest != hash_token(pepper(os.urandom(32)), token)
    assert digest != hash_token(pepper(key), Token(token.key_id, new_token().secret))


def test_matches_compares_in_constant_time_even_for_unknown_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(apikeys.hmac, "compare_digest", spy)
    token = new_token()
    key = pepper(os.urandom(32))
    stored = hash_token(key, token)
    assert matches(key, token, stored)
    assert not matches(key, Token(token.key_id, new_token().secret), stored)
    assert not matches(None, token, None)  # unknown key id: still one HMAC and one comparison
    assert not matches(key, token, None)
    assert not matches(None, token, stored)
    assert len(calls) == 5 and all(len(a) == len(b) == 32 for a, b in calls)
