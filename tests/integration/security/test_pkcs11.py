"""The PKCS#11 keyring against a real SoftHSM2 token: keys stay in the token, wraps bind the tenant, rotation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from faceward.errors import ConfigError
from faceward.security.errors import MasterKeyError, SealError
from faceward.security.kms import TenantKeyWrapper
from faceward.security.pkcs11 import Pkcs11Keyring, open_keyring
from faceward.settings import Kms, Settings
from tests.softhsm import Token, make_token, softhsm  # noqa: F401  (softhsm is a fixture)


def keyring(token: Token, prefix: str = "faceward-master") -> Pkcs11Keyring:
    return Pkcs11Keyring.open(token.module, token.label, token.pin_file.read_text().strip(), prefix)


def test_the_master_key_is_made_in_the_token_and_never_leaves_it(softhsm: Token) -> None:
    ring = keyring(softhsm)
    assert isinstance(ring, TenantKeyWrapper)
    with pytest.raises(MasterKeyError, match="faceward init"):
        ring.current_label()
    assert ring.ensure() == ("faceward-master.1", True)
    assert ring.ensure() == ("faceward-master.1", False)
    assert ring.describe("faceward-master.1") == {"sensitive": True, "extractable": False, "never_extractable": True}
    from pkcs11 import Attribute
    from pkcs11.exceptions import AttributeSensitive

    with pytest.raises(AttributeSensitive):
        ring._key("faceward-master.1")[Attribute.VALUE]


def test_a_wrap_binds_its_tenant(softhsm: Token) -> None:
    ring = keyring(softhsm)
    ring.ensure()
    key = os.urandom(32)
    wrapped = ring.wrap_tenant_key("t1", key)
    assert key not in wrapped and ring.tenant_key("t1", wrapped) == key
    with pytest.raises(SealError):
        ring.tenant_key("t2", wrapped)  # moved to another tenant's row
    with pytest.raises(SealError):
        ring.tenant_key("t1", wrapped[:-1] + bytes([wrapped[-1] ^ 1]))
    with pytest.raises(SealError):
        ring.tenant_key("t1", b"\x01" + os.urandom(60))  # a file keyring's wrap is not this one's


def test_rotation_keeps_old_wraps_opening(softhsm: Token) -> None:
    ring = keyring(softhsm)
    ring.ensure()
    key = os.urandom(32)
    old = ring.wrap_tenant_key("t1", key)
    label = ring.generate()
    assert label == "faceward-master.2" and ring.labels() == ["faceward-master.1", "faceward-master.2"]
    new = ring.wrap_tenant_key("t1", key)
    assert Pkcs11Keyring.parse(new)[0] == label and Pkcs11Keyring.parse(old)[0] == "faceward-master.1"
    assert ring.tenant_key("t1", old) == ring.tenant_key("t1", new) == key
    pinned = ring.pinned(label)
    assert pinned.tenant_key("t1", new) == key
    with pytest.raises(SealError):
        pinned.tenant_key("t1", old)  # rotation tells "still to do" from "done" by this


def test_another_token_with_the_same_label_and_pin_opens_nothing(softhsm: Token, tmp_path: Path) -> None:
    ring = keyring(softhsm)
    ring.ensure()
    wrapped = ring.wrap_tenant_key("t1", os.urandom(32))
    thief = make_token(softhsm.conf.parent, label=softhsm.label + "x")  # same module, another token
    other = keyring(thief)
    assert other.ensure() == ("faceward-master.1", True)  # same label, a different key
    with pytest.raises(SealError):
        other.tenant_key("t1", wrapped)


def test_settings_name_what_is_missing(softhsm: Token, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FACEWARD_PKCS11_MODULE"):
        open_keyring(Settings(home=tmp_path, kms=Kms.PKCS11, pkcs11_module=None))
    softhsm.pin_file.chmod(0o644)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        open_keyring(Settings(home=tmp_path))
    softhsm.pin_file.chmod(0o600)
    wrong = tmp_path / "wrong-pin"
    wrong.write_text("0000\n")
    wrong.chmod(0o600)
    with pytest.raises(MasterKeyError, match="log in"):
        open_keyring(Settings(home=tmp_path, pkcs11_pin_file=wrong))
    with pytest.raises(MasterKeyError, match="no single"):
        open_keyring(Settings(home=tmp_path, pkcs11_token="no-such-token"))


def test_the_keyring_logs_in_again_after_the_token_restarts(softhsm: Token) -> None:
    """The module is finalised and initialised again under a live keyring (what an HSM, its network
    client or its daemon restarting does to a process's session): every session handle is gone. The
    next wrap and unwrap log in again once and succeed; what was wrapped before still opens."""
    import pkcs11

    keyring = Pkcs11Keyring.open(softhsm.module, softhsm.label, softhsm.pin_file.read_text().strip())
    label, _ = keyring.ensure()
    rotating = keyring.pinned(label)  # a view sharing the session, as rotation holds one
    key = os.urandom(32)
    wrapped = keyring.wrap_tenant_key("t_1", key)
    pkcs11.lib(str(softhsm.module)).reinitialize()  # the "restart": C_Finalize, C_Initialize
    assert keyring.tenant_key("t_1", wrapped) == key
    assert keyring.reconnects == 1
    assert rotating.tenant_key("t_2", rotating.wrap_tenant_key("t_2", key)) == key  # the view uses the new session
    assert keyring.reconnects == 1 and keyring.labels() == [label]
    with pytest.raises(SealError):  # a real authentication failure is still a refusal, not a reconnect
        keyring.tenant_key("t_other", wrapped)
    assert keyring.reconnects == 1
