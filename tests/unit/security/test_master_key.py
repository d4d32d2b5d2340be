"""The service refuses to start without a real master key: none, a placeholder, malformed, or readable by others."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from faceward.bootstrap import master_keyring, open_accounts, open_gallery
from faceward.security.crypto import load_master_key, parse_master_key, write_master_key_file
from faceward.security.errors import MasterKeyError
from faceward.settings import load_settings

GOOD = base64.b64encode(os.urandom(32)).decode()


def test_no_key_at_all() -> None:
    with pytest.raises(MasterKeyError, match="no master key"):
        load_master_key(None, None)


@pytest.mark.parametrize(
    "value",
    ["changeme", "CHANGE-ME", "secret", "replace-with-a-real-key", "your-key-here", " ", "xxx",
     base64.b64encode(b"\x00" * 32).decode(), base64.b64encode(b"ab" * 16).decode(),
     base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()],
)
def test_placeholders_are_refused(value: str) -> None:
    with pytest.raises(MasterKeyError):
        parse_master_key(value, source="test")


@pytest.mark.parametrize("value", ["not base64 at all!", base64.b64encode(os.urandom(16)).decode()])
def test_malformed_keys_are_refused(value: str) -> None:
    with pytest.raises(MasterKeyError):
        parse_master_key(value, source="test")


def test_a_real_key_loads_from_env_or_file(tmp_path: Path) -> None:
    assert len(load_master_key(GOOD, None)) == 32
    path = tmp_path / "master.key"
    key = write_master_key_file(path)
    assert load_master_key(None, path) == key
    with pytest.raises(FileExistsError):
        write_master_key_file(path)


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    write_master_key_file(path)
    path.chmod(0o644)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        load_master_key(None, path)
    with pytest.raises(MasterKeyError, match="cannot read"):
        load_master_key(None, tmp_path / "missing.key")


def test_the_service_will_not_start_without_one(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACEWARD_MASTER_KEY")
    with pytest.raises(MasterKeyError, match="no master key"):
        master_keyring(load_settings())
    with pytest.raises(MasterKeyError):
        open_accounts(load_settings())
    monkeypatch.setenv("FACEWARD_MASTER_KEY", "changeme")
    with pytest.raises(MasterKeyError, match="placeholder"):
        open_gallery(load_settings())
    monkeypatch.setenv("FACEWARD_MASTER_KEY", base64.b64encode(b"\x07" * 32).decode())
    with pytest.raises(MasterKeyError, match="entropy"):
        open_gallery(load_settings())
    assert not (home / "faceward.db").exists()  # refused before touching the database


def test_with_a_real_key_it_starts(home: Path) -> None:
    accounts = open_accounts(load_settings())
    tenant_id, token = accounts.create_tenant("Acme")
    assert accounts.authenticate(token, source=None).tenant_id == tenant_id
    accounts.store.close()


def test_padded_seals_hide_the_length_and_older_seals_still_open() -> None:
    from faceward.security.crypto import PADDED, TEXT_BUCKET, aad, new_key, open_sealed, seal
    from faceward.security.errors import SealError

    key = new_key()
    where = aad("t_1", "subjects", "s_1", "name")
    texts = [b"", b"Al", b"Zeb Quartermaine", "Zoë".encode() * 20, b"\x80\x00ends in padding-like bytes\x80\x00"]
    sealed = [seal(key, t, where, pad_to=TEXT_BUCKET) for t in texts]
    assert {len(s) for s in sealed[:4]} == {1 + 12 + TEXT_BUCKET + 16}
    assert [open_sealed(key, s, where) for s in sealed] == texts
    assert len(seal(key, b"x" * 300, where, pad_to=TEXT_BUCKET)) == 1 + 12 + 512 + 16  # the next bucket
    plain = seal(key, b"old", where)  # values sealed before padding existed
    assert open_sealed(key, plain, where) == b"old"
    downgraded = b"\x01" + sealed[2][1:]  # the version byte is authenticated: no stripping the padding rule
    with pytest.raises(SealError):
        open_sealed(key, downgraded, where)
    assert sealed[2][:1] == PADDED
