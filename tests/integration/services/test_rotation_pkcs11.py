"""Online rotation with the master key in a token: every unwrap during the rotation succeeds, on both stores."""

from __future__ import annotations

import threading
from pathlib import Path

from faceward.security.audit import AuditLog
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
