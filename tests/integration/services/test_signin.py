"""OpenID Connect sign-in at the service level, against real providers on loopback (``tests/oidc_providers.py``),
on SQLite and PostgreSQL. The provider's consent page is driven with httpx (no browser: the Chromium journey
is ``tests/e2e/test_console_oidc.py``); everything else is the real flow: discovery, PKCE, the code exchange,
the ID token's signature and claims.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from sqlalchemy import select

from faceward.errors import InvalidInput, NotFound
from faceward.security.audit import AuditLog
from faceward.security.crypto import Keyring
from faceward.security.errors import Forbidden, Unauthenticated
from faceward.security.oidc import SignInRefused
from faceward.security.permissions import Role
from faceward.security.policy import Operator, Principal, operator_principal
from faceward.services.accounts import AccountService
from faceward.services.gallery import GalleryService
from faceward.services.gate import Gate, Limits
from faceward.services.sessions import ConsoleSessions
from faceward.services.signin import SignInService
from faceward.services.usage import UsageService
from faceward.settings import Settings
from faceward.store import SqlStore, schema
from tests.oidc_providers import Providers

REDIRECT = "http://127.0.0.1:9/console/login/x/callback"
SEARCHERS = ["faceward-searchers=searcher", "faceward-auditors=auditor"]


class Rig:
    def __init__(self, db_url: str, home: Path, providers: Providers) -> None:
        self.providers = providers
        self.gallery = GalleryService(SqlStore.open(db_url), Keyring(os.urandom(32)), Settings(home=home, database_url=db_url))
        self.audit = AuditLog(self.gallery.store, self.gallery.vault.tenant_key)
        self.accounts = AccountService(self.gallery, self.audit)
        self.sessions = ConsoleSessions(self.accounts)
        gate = Gate(self.audit, UsageService(self.gallery.store, self.gallery.vault), Limits(), clock=self.gallery.clock)
        self.signin = SignInService(self.gallery, self.audit, self.sessions, gate)
        self.tenant, _ = self.accounts.create_tenant("Sign-in Org")
        self.admin = Principal(self.tenant, "k_admin", Role.ADMIN)

    def connect(self, issuer: str, *, tenant: str | None = None) -> str:
        principal = Principal(tenant, "k_admin", Role.ADMIN) if tenant else self.admin
        view = self.signin.connect(principal, issuer=issuer, client_id="faceward", client_secret="s3cret-value",
                                   rules=SEARCHERS, source="test")
        return str(view["login_path"]).rsplit("/", 1)[-1]

    def at_provider(self, login_id: str, sub: str) -> tuple[str, dict[str, str]]:
        """Begin, then sign in as ``sub`` on the provider's consent page; the binding and the redirect's parameters."""
        begun = self.signin.begin(login_id, redirect_uri=REDIRECT)
        answer = httpx.post(begun.url, data={"sub": sub}, follow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text
        location = answer.headers["location"]
        assert location.startswith(REDIRECT)
        return begun.binding, dict(parse_qsl(urlsplit(location).query))

    def refusals(self, tenant: str | None = None) -> list[tuple[str, str]]:
        entries = self.audit.entries(tenant or self.tenant, action="console.sign_in_refused")
        return [(e.details["reason"], e.actor) for e in entries]


@pytest.fixture()
def rig(db_url: str, tmp_path: Path, oidc_providers: Providers) -> Any:
    made = Rig(db_url, tmp_path / "home", oidc_providers)
    yield made
    made.gallery.store.close()


def test_a_person_signs_in_and_is_named_by_issuer_and_subject(rig: Rig) -> None:
    login = rig.connect(rig.providers.main)
    binding, params = rig.at_provider(login, "alice")
    session = rig.signin.complete(login, params, binding=binding, redirect_uri=REDIRECT, source="console:test")
    principal = session.principal
    assert principal.role is Role.SEARCHER and principal.key_id.startswith("p_")
    assert principal.actor == f"person:{rig.providers.main} alice" and principal.person.name == "Alice Example"
    assert rig.sessions.resolve(session.cookie).principal == principal  # the cookie opens the same person
    [entry] = rig.audit.entries(rig.tenant, action="console.sign_in")
    assert entry.actor == principal.actor and entry.details["method"] == "oidc" and entry.details["role"] == "searcher"
    assert rig.signin.actor_names(rig.tenant, [entry.actor, "key:k_1"]) == {entry.actor: "Alice Example"}

    # A second sign-in of the same person is the same person (one reviewer), another person is another.
    binding, params = rig.at_provider(login, "alice")
    again = rig.signin.complete(login, params, binding=binding, redirect_uri=REDIRECT, source="console:test")
    binding, params = rig.at_provider(login, "bob")
    bob = rig.signin.complete(login, params, binding=binding, redirect_uri=REDIRECT, source="console:test")
    assert again.cookie != session.cookie and again.principal.key_id == principal.key_id
    assert bob.principal.key_id != principal.key_id

    # Nothing about the person or the provider's secret is readable in the database.
    with rig.gallery.store.transaction(rig.tenant) as conn:
        rows = [bytes(r) for r in conn.execute(select(schema.people.c.profile_sealed)).scalars()]
        rows += [bytes(r) for r in conn.execute(select(schema.oidc_connections.c.config_sealed)).scalars()]
        idents = list(conn.execute(select(schema.people.c.ident)).scalars())
    for plain in (b"Alice", b"alice", b"s3cret-value", rig.providers.main.encode()):
        assert all(plain not in row for row in rows)
    assert all("alice" not in ident for ident in idents)

    # A session belongs to its tenant: the same secret under another tenant's id opens nothing.
    other, _ = rig.accounts.create_tenant("Another Org")
    with pytest.raises(Unauthenticated):
        rig.sessions.resolve(session.cookie.replace(rig.tenant, other))

    # Signing out ends the session; disconnecting the provider ends every person's session.
    assert rig.sessions.end(again.cookie)
    with pytest.raises(Unauthenticated):
        rig.sessions.resolve(again.cookie)
    rig.signin.disconnect(rig.admin, source="test")
    with pytest.raises(Unauthenticated):
        rig.sessions.resolve(session.cookie)
    with pytest.raises(NotFound):
        rig.signin.begin(login, redirect_uri=REDIRECT)


def test_a_state_works_once_and_only_in_the_browser_that_began(rig: Rig) -> None:
    login = rig.connect(rig.providers.main)
    binding, params = rig.at_provider(login, "alice")
    with pytest.raises(SignInRefused, match="started in another browser"):
        rig.signin.complete(login, params, binding="another-browser", redirect_uri=REDIRECT, source="t")
    with pytest.raises(SignInRefused, match="already used"):  # the failed attempt used the state up
        rig.signin.complete(login, params, binding=binding, redirect_uri=REDIRECT, source="t")
    binding, params = rig.at_provider(login, "alice")
    rig.signin.complete(login, params, binding=binding, redirect_uri=REDIRECT, source="t")
    with pytest.raises(SignInRefused, match="already used"):
        rig.signin.complete(login, params, binding=binding, redirect_uri=REDIRECT, source="t")
    with pytest.raises(SignInRefused, match="already used"):
        rig.signin.complete(login, {"code": params["code"]}, binding=binding, redirect_uri=REDIRECT, source="t")
    assert rig.refusals() == [("browser_mismatch", "anonymous"), ("replayed_state", "anonymous"),
                              ("replayed_state", "anonymous"), ("replayed_state", "anonymous")]


def test_refusals_name_their_reason(rig: Rig) -> None:
    login = rig.connect(rig.providers.main)
    binding, params = rig.at_provider(login, "mallory")
    with pytest.raises(SignInRefused, match="none of your 'groups' gives a role"):
        rig.signin.complete(login, params, binding=binding, redirect_uri=REDIRECT, source="t")
    assert rig.refusals() == [("no_mapped_role", f"person:{rig.providers.main} mallory")]

    for issuer, reason, message in ((rig.providers.expired, "expired_token", "has expired"),
                                    (rig.providers.other_audience, "wrong_audience", "another application")):
        tenant, _ = rig.accounts.create_tenant(reason)
        other = rig.connect(issuer, tenant=tenant)
        binding, params = rig.at_provider(other, "alice")
        with pytest.raises(SignInRefused, match=message):
            rig.signin.complete(other, params, binding=binding, redirect_uri=REDIRECT, source="t")
        assert rig.refusals(tenant) == [(reason, "anonymous")]
        assert rig.audit.entries(tenant, action="console.sign_in") == []


def test_connecting_checks_the_provider_and_keeps_the_secret_out_of_sight(rig: Rig) -> None:
    main = rig.providers.main
    for issuer, rules, message in (
        ("http://idp.example.org", SEARCHERS, "https"),
        (main + "/", SEARCHERS, "cannot use this provider"),  # the provider names itself without the slash
        (main, [], "at least one"),
        (main, ["faceward-searchers=superuser"], "no role 'superuser'"),
    ):
        with pytest.raises(InvalidInput, match=message):
            rig.signin.connect(rig.admin, issuer=issuer, client_id="c", client_secret="s", rules=rules, source="t")
    with pytest.raises(Forbidden):
        rig.signin.connect(Principal(rig.tenant, "k_s", Role.SEARCHER), issuer=main, client_id="c", client_secret="s",
                           rules=SEARCHERS, source="t")
    first = rig.connect(main)
    operator = operator_principal(rig.tenant, Operator("root", "oidc connect"))
    view = rig.signin.connect(operator, issuer=main, client_id="faceward-2", client_secret="other", rules=SEARCHERS,
                              source="cli")
    assert view["login_path"] == f"/console/login/{first}"  # changing the connection keeps the tenant's address
    assert view["client_secret"] == "**********" and view["client_id"] == "faceward-2"
    entries = rig.audit.entries(rig.tenant, action="sign_in.connect")
    assert [e.actor for e in entries] == ["key:k_admin", "operator"]
    assert all("s3cret" not in str(e.details) and "other" not in str(e.details.get("client_secret", "")) for e in entries)
    assert rig.signin.store.tenant_of_login(first) == rig.tenant
    assert rig.signin.store.tenant_of_login("l_" + "0" * 32) is None


def test_sessions_of_people_expire_like_key_sessions(rig: Rig) -> None:
    login = rig.connect(rig.providers.main)
    binding, params = rig.at_provider(login, "bob")
    session = rig.signin.complete(login, params, binding=binding, redirect_uri=REDIRECT, source="t")
    later = datetime.now(timezone.utc) + timedelta(minutes=31)
    rig.gallery.clock = lambda: later  # idle past IDLE
    with pytest.raises(Unauthenticated):
        rig.sessions.resolve(session.cookie)
