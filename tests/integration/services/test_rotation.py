"""Master key rotation on both stores: every tenant key re-wrapped, nothing else touched, resumable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from faceward.security.crypto import Keyring, parse_master_key
from faceward.security.errors import SealError
from faceward.security.kms import TenantKeyWrapper
from faceward.services.accounts import AccountService
from faceward.security.audit import AuditLog
from faceward.services.consent import Consent, LawfulBasis
from faceward.services.gallery import GalleryService
from faceward.settings import Settings
from faceward.security.operator_log import OperatorLog
from faceward.store import SqlStore


def service(store: SqlStore, keyring: Keyring, home: Path) -> AccountService:
    gallery = GalleryService(store, keyring, Settings(home=home))
    operator_log = OperatorLog(home / OperatorLog.FILE_NAME, keyring=keyring, command="test")
    return AccountService(gallery, AuditLog(store, gallery.vault.tenant_key), operator_log=operator_log)


def test_rotation_rewraps_every_tenant(db_url: str, tmp_path: Path) -> None:
    store = SqlStore.open(db_url)
    old, new = Keyring(os.urandom(32)), Keyring(os.urandom(32))
    assert isinstance(old, TenantKeyWrapper)
    accounts = service(store, old, tmp_path)
    tenants = {}
    for name in ("Acme", "Bravo", "Gone"):
        tenant_id, token = accounts.create_tenant(name)
        subject = accounts.gallery.create_subject(tenant_id, f"{name} person", Consent(LawfulBasis.EMPLOYMENT, "hr-1", accounts.gallery.clock()))
        tenants[name] = (tenant_id, token, subject.id)
    accounts.delete_tenant(tenants["Gone"][0])
    before = {t: store.get_tenant(t).wrapped_key for t, _, _ in tenants.values() if t != tenants["Gone"][0]}

    assert accounts.rotate_master(new) == {"rotated": 2, "already": 0, "shredded": 0}
    for tenant_id, wrapped in before.items():
        rewrapped = store.get_tenant(tenant_id).wrapped_key
        assert rewrapped != wrapped
        with pytest.raises(SealError):
            old.tenant_key(tenant_id, rewrapped)  # type: ignore[arg-type]

    fresh = service(store, new, tmp_path)  # a service started with the new key reads everything
    for name in ("Acme", "Bravo"):
        tenant_id, token, subject_id = tenants[name]
        assert fresh.authenticate(token, source=None).tenant_id == tenant_id
        assert fresh.gallery.get_subject(tenant_id, subject_id).display_name == f"{name} person"
        assert fresh.audit.verify(tenant_id).ok
        assert [e for e in fresh.audit.entries(tenant_id) if e.action.startswith("master_key")] == []  # the host's act
    operator = OperatorLog(tmp_path / OperatorLog.FILE_NAME, keyring=new).entries()  # its key re-wrapped too
    assert [(e.action, e.tenant_id) for e in operator if e.action.startswith("master_key")] == [
        ("master_key.rewrap", tenants["Acme"][0]), ("master_key.rewrap", tenants["Bravo"][0]),
        ("master_key.rotate", None)]
    assert operator[-1].details == {"rotated": 2, "already": 0, "shredded": 0}
    assert {t["name"] for t in fresh.list_tenants()} == {"Acme", "Bravo"}
    assert fresh.gallery.ledger.erased().tenant(tenants["Gone"][0])  # the erasure ledger's key re-wrapped too
    again = service(store, old, tmp_path).rotate_master(new)  # running the same rotation again is harmless
    assert again == {"rotated": 0, "already": 2, "shredded": 0}
    store.close()


def test_an_interrupted_rotation_is_finished_by_running_it_again(db_url: str, tmp_path: Path) -> None:
    store = SqlStore.open(db_url)
    old, new = Keyring(os.urandom(32)), Keyring(os.urandom(32))
    accounts = service(store, old, tmp_path)
    first, _ = accounts.create_tenant("First")
    second, token = accounts.create_tenant("Second")
    # Simulate a crash after the first tenant: re-wrap it alone, behind the service's back.
    key = old.tenant_key(first, store.get_tenant(first).wrapped_key)  # type: ignore[arg-type]
    store.update_tenant(first, wrapped_key=new.wrap_tenant_key(first, key))
    assert service(store, old, tmp_path).rotate_master(new) == {"rotated": 1, "already": 1, "shredded": 0}
    assert service(store, new, tmp_path).authenticate(token, source=None).tenant_id == second
    with pytest.raises(SealError, match="neither"):
        service(store, Keyring(os.urandom(32)), tmp_path).rotate_master(Keyring(os.urandom(32)))
    store.close()


def test_servers_follow_an_online_key_file_rotation(db_url: str, tmp_path: Path) -> None:
    """Servers over a key file keep reading every tenant while `rotate-master --online` re-wraps them
    under <key file>.next and then renames it over the key file; one that slept through the whole
    rotation, and one started afterwards with only the new file, read everything too."""
    from faceward.bootstrap import file_keyring
    from faceward.security.crypto import write_master_key_file
    from faceward.security.keyfile import FileKeyring, next_key_path, rotate_online

    home = tmp_path / "home"
    key_file = home / "master.key"
    write_master_key_file(key_file)
    settings = Settings(home=home, database_url=db_url)
    store = SqlStore.open(db_url)
    operator_keyring = file_keyring(settings)
    assert isinstance(operator_keyring, FileKeyring)
    accounts = AccountService(GalleryService(store, operator_keyring, settings), AuditLog(store, GalleryService(
        store, operator_keyring, settings).vault.tenant_key))
    tenants = {}
    for name in ("Acme", "Bravo", "Charlie"):
        tenant_id, _ = accounts.create_tenant(name)
        subject = accounts.gallery.create_subject(tenant_id, f"{name} person", Consent(LawfulBasis.EMPLOYMENT, "hr-1",
                                                                                         accounts.gallery.clock()))
        tenants[tenant_id] = subject.id
    serving = GalleryService(SqlStore.open(db_url), file_keyring(settings), settings)
    asleep = GalleryService(SqlStore.open(db_url), file_keyring(settings), settings)

    def read_all(gallery: GalleryService) -> list[str]:
        gallery.forget_keys()  # every read unwraps whatever the store holds now
        return [gallery.get_subject(t, s).display_name for t, s in tenants.items()]

    names = ["Acme person", "Bravo person", "Charlie person"]
    assert read_all(serving) == names

    def rewrap_reading(new: Keyring) -> dict[str, int]:
        assert next_key_path(key_file).exists()
        assert read_all(serving) == names  # the successor is there, nothing re-wrapped yet
        counts = accounts.rotate_master(new)
        assert read_all(serving) == names  # everything under the successor, the key file still the old key
        return counts

    done = rotate_online(operator_keyring, rewrap_reading)
    assert done["rotated"] == 3 and not next_key_path(key_file).exists()
    retired = Path(done["retired_key_file"])
    assert retired.exists() and oct(retired.stat().st_mode & 0o777) == "0o600"
    assert read_all(serving) == names
    assert read_all(asleep) == names  # never saw .next: finds the new key in the key file
    fresh = GalleryService(SqlStore.open(db_url), file_keyring(settings), settings)
    assert read_all(fresh) == names  # started after: the new key file alone
    with pytest.raises(SealError):  # the retired key no longer opens any tenant
        Keyring(parse_master_key(retired.read_text(), source="test")).tenant_key(
            next(iter(tenants)), store.get_tenant(next(iter(tenants))).wrapped_key)  # type: ignore[arg-type]
    store.close()
