"""Accounts on both stores: tenants, key lifecycle, authentication, audit of key changes, crypto-shred."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from faceward.errors import InvalidInput, NotFound
from faceward.security.crypto import Keyring
from faceward.security.errors import Unauthenticated
from faceward.security.permissions import Role
from faceward.services.accounts import AccountService
from faceward.security.audit import AuditLog
from faceward.services.gallery import GalleryService, TenantSuspended
from faceward.settings import Settings
from faceward.store import SqlStore, schema
from faceward.store.accounts import AccountStore


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def accounts(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[AccountService]:
    store = SqlStore.open(db_url)
    gallery = GalleryService(store, Keyring(os.urandom(32)), Settings(home=tmp_path / "home"), clock=clock)
    yield AccountService(gallery, AuditLog(store, gallery.vault.tenant_key, clock=clock))
    store.close()


def test_a_new_tenant_gets_one_admin_key_that_authenticates(accounts: AccountService) -> None:
    tenant_id, token = accounts.create_tenant("Acme Police")
    principal = accounts.authenticate(token, source="10.0.0.1")
    assert principal.tenant_id == tenant_id and principal.role is Role.ADMIN
    [key] = accounts.list_keys(tenant_id)
    assert key.id == principal.key_id and key.role is Role.ADMIN and key.revoked_at is None
    [row] = accounts.list_tenants()
    assert row["id"] == tenant_id and row["name"] == "Acme Police" and row["keys"] == 1 and row["status"] == "active"
    assert [e.action for e in accounts.audit.entries(tenant_id)] == ["tenant.create", "key.create"]


def test_only_a_hash_of_the_secret_is_stored(accounts: AccountService) -> None:
    tenant_id, token = accounts.create_tenant("Acme")
    view, searcher = accounts.create_key(tenant_id, Role.SEARCHER, "desk 4", None, actor="operator", source=None)
    with accounts.store.transaction(tenant_id) as conn:
        rows = conn.execute(schema.api_keys.select()).mappings().all()
    assert len(rows) == 2
    for row in rows:
        blob = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row.values())
        for secret in (token, searcher):
            assert secret.split("_")[2].encode() not in blob
        assert b"desk 4" not in blob and b"searcher" not in blob and b"admin" not in blob
    assert view.label == "desk 4" and accounts.get_key(tenant_id, view.id).role is Role.SEARCHER


@pytest.mark.parametrize("token", [None, "", "Bearer x", "fw_short_secret", "fw_" + "A" * 16 + "_" + "b" * 43])
def test_missing_malformed_and_unknown_tokens_are_refused(accounts: AccountService, token: str | None) -> None:
    accounts.create_tenant("Acme")
    with pytest.raises(Unauthenticated):
        accounts.authenticate(token, source=None)


def test_wrong_secret_is_refused_and_audited(accounts: AccountService) -> None:
    tenant_id, token = accounts.create_tenant("Acme")
    forged = token[: -43] + ("A" if token[-43] != "A" else "B") + token[-42:]
    with pytest.raises(Unauthenticated) as caught:
        accounts.authenticate(forged, source="203.0.113.9")
    assert caught.value.reason == "wrong secret" and str(caught.value) == "invalid API key"
    last = accounts.audit.entries(tenant_id, action="auth.failure")[-1]
    assert last.details["reason"] == "wrong secret" and last.source == "203.0.113.9"


def test_expiry_and_revocation(accounts: AccountService, clock: Clock) -> None:
    tenant_id, admin = accounts.create_tenant("Acme")
    actor = accounts.authenticate(admin, source=None).actor
    expiring, token = accounts.create_key(
        tenant_id, Role.SEARCHER, "temp", clock.now + timedelta(hours=1), actor=actor, source="cli"
    )
    assert accounts.authenticate(token, source=None).role is Role.SEARCHER
    clock.now += timedelta(hours=1)
    with pytest.raises(Unauthenticated) as caught:
        accounts.authenticate(token, source=None)
    assert caught.value.reason == "expired"

    view, other = accounts.create_key(tenant_id, Role.ENROLLER, "", None, actor=actor, source=None)
    accounts.authenticate(other, source=None)
    accounts.revoke_key(tenant_id, view.id, actor=actor, source="10.1.1.1")
    accounts.revoke_key(tenant_id, view.id, actor=actor, source="10.1.1.1")  # idempotent, audited once
    with pytest.raises(Unauthenticated) as caught:
        accounts.authenticate(other, source=None)
    assert caught.value.reason == "revoked"
    assert accounts.get_key(tenant_id, view.id).revoked_at == clock.now
    assert len(accounts.audit.entries(tenant_id, action="key.revoke")) == 1
    with pytest.raises(InvalidInput):
        accounts.create_key(tenant_id, Role.SEARCHER, "past", clock.now - timedelta(seconds=1), actor=actor, source=None)
    assert accounts.audit.verify(tenant_id).ok


def test_keys_of_another_tenant_are_not_found(accounts: AccountService) -> None:
    a, _ = accounts.create_tenant("A")
    b, _ = accounts.create_tenant("B")
    [b_key] = accounts.list_keys(b)
    with pytest.raises(NotFound):
        accounts.revoke_key(a, b_key.id, actor="x", source=None)
    with pytest.raises(NotFound):
        accounts.revoke_key(a, "nope", actor="x", source=None)
    with pytest.raises(NotFound):
        accounts.get_key(a, b_key.id)
    assert [k.id for k in accounts.list_keys(a)] != [b_key.id]


def test_last_used_is_written_at_most_once_a_minute(accounts: AccountService, clock: Clock) -> None:
    tenant_id, token = accounts.create_tenant("Acme")
    first = clock.now
    accounts.authenticate(token, source=None)
    clock.now += timedelta(seconds=30)
    accounts.authenticate(token, source=None)
    assert accounts.list_keys(tenant_id)[0].last_used_at == first
    clock.now += timedelta(seconds=31)
    accounts.authenticate(token, source=None)
    assert accounts.list_keys(tenant_id)[0].last_used_at == clock.now


def test_suspension_stops_every_key(accounts: AccountService) -> None:
    tenant_id, token = accounts.create_tenant("Acme")
    accounts.suspend_tenant(tenant_id)
    with pytest.raises(Unauthenticated) as caught:
        accounts.authenticate(token, source=None)
    assert caught.value.reason == "tenant suspended"
    with pytest.raises(TenantSuspended):
        accounts.create_key(tenant_id, Role.SEARCHER, "x", None, actor="operator", source=None)
    accounts.suspend_tenant(tenant_id, suspended=False)
    accounts.authenticate(token, source=None)
    actions = [e.action for e in accounts.audit.entries(tenant_id)]
    assert actions[-3:] == ["tenant.suspend", "auth.failure", "tenant.resume"]


def test_delete_crypto_shreds_first_then_removes_rows(accounts: AccountService) -> None:
    keep, keep_token = accounts.create_tenant("Keep")
    gone, token = accounts.create_tenant("Gone")
    wrapped = accounts.store.get_tenant(gone).wrapped_key
    calls: list[str] = []
    real_update, real_delete = accounts.store.update_tenant, accounts.store.delete_tenant
    accounts.store.update_tenant = lambda t, **v: (calls.append(f"update {sorted(v)}"), real_update(t, **v))[1]  # type: ignore[method-assign]
    accounts.store.delete_tenant = lambda t: (calls.append("delete"), real_delete(t))[1]  # type: ignore[method-assign]

    class Ledger:
        def record_tenant(self, tenant_id: str, *, at: datetime) -> None:
            calls.append(f"ledger {tenant_id == gone}")

    accounts.gallery.ledger = Ledger()  # type: ignore[attr-defined,assignment]
    accounts.delete_tenant(gone)
    assert calls == ["ledger True", "update ['status', 'wrapped_key']", "delete"]
    with pytest.raises(NotFound):
        accounts.store.get_tenant(gone)
    repo = AccountStore(accounts.store)
    assert repo.list_keys(gone) == [] and repo.audit_rows(gone) == [] and repo.audit_head(gone) is None
    with pytest.raises(Unauthenticated):
        accounts.authenticate(token, source=None)
    with pytest.raises(NotFound):
        accounts.delete_tenant(gone)
    assert wrapped is not None  # what a backup still holds opens with nothing that is left
    assert accounts.authenticate(keep_token, source=None).tenant_id == keep
    assert [t["id"] for t in accounts.list_tenants()] == [keep]


def test_unknown_and_known_keys_take_the_same_comparison(accounts: AccountService, monkeypatch: pytest.MonkeyPatch) -> None:
    import faceward.services.accounts as module

    tenant_id, token = accounts.create_tenant("Acme")
    seen: list[bool] = []
    real = module.matches

    def spy(pepper_key: bytes | None, parsed: object, stored: bytes | None) -> bool:
        seen.append(pepper_key is not None and stored is not None)
        return real(pepper_key, parsed, stored)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "matches", spy)
    unknown = "fw_" + "Z" * 16 + token[19:]
    for attempt in (unknown, token, "fw_malformed"):
        try:
            accounts.authenticate(attempt, source=None)
        except Unauthenticated:
            pass
    assert seen == [False, True, False]  # one HMAC + compare_digest each, dummies for the unknown and malformed
