"""Online rotation with the master key in a token: every unwrap during the rotation succeeds, on both stores."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from faceward.errors import Conflict, NotFound
from faceward.security.audit import AuditLog
from faceward.security.errors import MasterKeyError, SealError
from faceward.security.operator_log import OperatorLog
from faceward.security.pkcs11 import Pkcs11Keyring
from faceward.services.accounts import AccountService
from faceward.services.consent import Consent, LawfulBasis
from faceward.services.gallery import GalleryService
from faceward.settings import Settings
from faceward.store import SqlStore
from tests.softhsm import Token, softhsm  # noqa: F401  (softhsm is a fixture)


def test_unwraps_never_fail_while_every_tenant_key_is_rewrapped(db_url: str, tmp_path: Path, softhsm: Token) -> None:
    keyring = Pkcs11Keyring.open(softhsm.module, softhsm.label, softhsm.pin_file.read_text().strip())
    keyring.ensure()
    store = SqlStore.open(db_url)
    gallery = GalleryService(store, keyring, Settings(home=tmp_path))
    accounts = AccountService(gallery, AuditLog(store, gallery.vault.tenant_key))
    tenants = []
    for n in range(12):
        tenant_id, _ = accounts.create_tenant(f"Org {n}")
        gallery.create_subject(tenant_id, f"Person {n}", Consent(LawfulBasis.EMPLOYMENT, "hr-1", gallery.clock()))
        tenants.append(tenant_id)
    # The serving side: a second service over the same store and token, its key cache emptied before
    # every read, so each read unwraps whatever wrapped key the store holds at that moment.
    reader = GalleryService(SqlStore.open(db_url), keyring, Settings(home=tmp_path))
    reads: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def read() -> None:
        i = 0
        while not stop.is_set():
            tenant_id = tenants[i % len(tenants)]
            try:
                reader.forget_keys()
                names = [s.display_name for s in reader.list_subjects(tenant_id)]
                assert names == [f"Person {tenants.index(tenant_id)}"]
                reads.append(1)
            except Exception as exc:
                failures.append(repr(exc))
            i += 1

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        while len(reads) < 20:
            stop.wait(0.01)
        started = len(reads)
        label = keyring.generate()
        counts = accounts.rotate_master(keyring.pinned(label))
        during = len(reads) - started
        while len(reads) < started + during + 20:
            stop.wait(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join()
        reader.store.close()
        store.close()
    assert counts == {"rotated": 12, "already": 0, "shredded": 0}
    assert failures == [] and during > 0, (failures[:3], during)
    check = SqlStore.open(db_url)
    try:
        assert {Pkcs11Keyring.parse(t.wrapped_key)[0] for t in check.list_tenants() if t.wrapped_key} == {label}
    finally:
        check.close()


def test_an_old_master_key_is_retired_only_when_nothing_live_is_wrapped_under_it(
    db_url: str, tmp_path: Path, softhsm: Token
) -> None:
    keyring = Pkcs11Keyring.open(softhsm.module, softhsm.label, softhsm.pin_file.read_text().strip())
    old, _ = keyring.ensure()
    store = SqlStore.open(db_url)
    gallery = GalleryService(store, keyring, Settings(home=tmp_path))
    log = OperatorLog(tmp_path / OperatorLog.FILE_NAME, keyring=keyring, command="test")
    accounts = AccountService(gallery, AuditLog(store, gallery.vault.tenant_key), operator_log=log)
    tenant_id, _ = accounts.create_tenant("Org")
    subject = gallery.create_subject(tenant_id, "Person", Consent(LawfulBasis.EMPLOYMENT, "hr-1", gallery.clock()))
    before = store.get_tenant(tenant_id).wrapped_key
    with pytest.raises(MasterKeyError, match="current master key"):
        accounts.retire_master(keyring, old)
    new = keyring.generate()  # a new key in the token, nothing re-wrapped yet: the old one is still in use
    with pytest.raises(Conflict, match="still wrapped under"):
        accounts.retire_master(keyring, old)
    accounts.rotate_master(keyring.pinned(new))
    assert accounts.retire_master(keyring, old) == {"label": old, "remaining": [new]}
    assert keyring.labels() == [new]
    gallery.forget_keys()
    assert gallery.get_subject(tenant_id, subject.id).display_name == "Person"  # live data opens under the new key
    with pytest.raises(SealError):  # what only the old key wrapped (an old backup's key) is gone for good
        keyring.tenant_key(tenant_id, before)  # type: ignore[arg-type]
    assert [e.action for e in log.entries()][-1] == "master_key.retire"
    with pytest.raises(NotFound):
        accounts.retire_master(keyring, old)
    store.close()
