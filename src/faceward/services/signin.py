"""Console sign-in through the tenant's OpenID Connect provider (decision 021): the use cases.

* ``connect`` / ``connection`` / ``disconnect`` - a tenant admin (API, console) or the host's operator
  (``faceward oidc connect``) connects the organisation's provider: issuer, client id, client secret,
  and which claim values give which role. One act, audited (never the secret); the configuration is
  sealed with the tenant key. The tenant's sign-in URL is ``/console/login/<login id>``: an opaque,
  random id, kept when the connection is changed, so nothing about other tenants can be learnt or
  guessed from it and no endpoint lists tenants.
* ``begin`` - a browser opens that URL: a pending sign-in (state, nonce, PKCE verifier, and a
  binding cookie for this browser) is stored for :data:`PENDING_LIFETIME` and the browser is sent to
  the provider.
* ``complete`` - the provider sends the browser back: the state is taken (it works once), the
  browser must be the one that began, the code is exchanged (with the verifier and the secret), the
  ID token is checked (:mod:`faceward.security.oidc`), the claims must map to a role; then the
  person is recorded (a keyed hash of issuer and subject; issuer, subject, name and role sealed)
  and a server-side session opens. Every refusal is audited in the tenant's chain with its reason
  and, once the provider has named them, the person.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from faceward.errors import Conflict, InvalidInput, NotFound
from faceward.security.audit import AuditLog
from faceward.security.oidc import (
    DEFAULT_CLAIM, Provider, ProviderConfig, ProviderUnreachable, RoleMapping, SignInRefused, check_issuer, parse_rules,
)
from faceward.security.permissions import Permission, Role
from faceward.security.policy import Person, Principal, person_actor
from faceward.services.gate import Gate
from faceward.services.gallery import GalleryService
from faceward.services.ids import new_id
from faceward.services.sessions import ConsoleSessions, Session
from faceward.store.accounts import utc
from faceward.store.people import ConnectionRecord, OidcStore, PendingRecord, PersonRecord

PENDING_LIFETIME = timedelta(minutes=10)
LOGIN_ID = re.compile(r"l_[0-9a-f]{32}")
CLAIM = re.compile(r"[A-Za-z0-9_:./-]{1,64}")
ANONYMOUS = "anonymous"
START_AGAIN = "start again from your organisation's faceward sign-in page"


@dataclass(frozen=True)
class Begun:
    """Where to send the browser, and the value of its binding cookie (only its hash is stored)."""

    url: str
    binding: str


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _session_ref(cookie: str) -> str:
    secret = cookie.rsplit(".", 1)[-1]
    return hashlib.sha256(_sha256(secret).encode()).hexdigest()[:12]


class SignInService:
    def __init__(self, gallery: GalleryService, audit: AuditLog, sessions: ConsoleSessions, gate: Gate, *,
                 provider: Provider | None = None) -> None:
        self.gallery = gallery
        self.audit = audit
        self.sessions = sessions
        self.gate = gate
        self.provider = provider or Provider()
        self.store = OidcStore(gallery.store)

    def _now(self) -> datetime:
        return utc(self.gallery.clock())

    # -- the tenant's connection --------------------------------------------------------

    def connect(self, principal: Principal, *, issuer: str, client_id: str, client_secret: str,
                claim: str = DEFAULT_CLAIM, rules: Sequence[str] | Sequence[tuple[str, Role]], source: str) -> dict[str, Any]:
        """Connect (or change) the tenant's provider; checks its discovery document before keeping anything."""
        self.gate.admit(principal, Permission.SIGN_IN_MANAGE, "sign_in.connect", source)
        tenant_id = principal.tenant_id
        self.gallery.active_tenant(tenant_id)
        config = self._validated(issuer, client_id, client_secret, claim, rules)
        try:
            self.provider.endpoints(config.issuer)
        except (SignInRefused, ProviderUnreachable) as exc:
            raise InvalidInput(f"cannot use this provider: {exc.message}", code="provider_unusable") from None
        existing = self.store.connection(tenant_id)
        now = self._now()
        login_id = existing.login_id if existing else "l_" + secrets.token_hex(16)
        record = ConnectionRecord(tenant_id, login_id, self.gallery.vault.seal_oidc_config(tenant_id, login_id, config.to_json()),
                                  existing.created_at if existing else now, now)
        details = {"issuer": config.issuer, "client_id": config.client_id, **config.mapping.as_dict(),
                   "login_id": login_id, "replaced": existing is not None}
        with self.gallery.store.transaction(tenant_id) as conn:
            self.store.put_connection(record, conn=conn)
            self.audit.append(tenant_id, actor=principal.actor, action="sign_in.connect", details=details, source=source,
                              conn=conn)
        return _view(record, config)

    def connection(self, principal: Principal, *, source: str) -> dict[str, Any] | None:
        self.gate.admit(principal, Permission.SIGN_IN_MANAGE, "sign_in.read", source)
        record = self.store.connection(principal.tenant_id)
        self.gate.audit(principal, "sign_in.read", {"connected": record is not None}, source)
        return _view(record, self._open(record)) if record else None

    def disconnect(self, principal: Principal, *, source: str) -> bool:
        """Forget the provider; every person's console session ends with it."""
        self.gate.admit(principal, Permission.SIGN_IN_MANAGE, "sign_in.disconnect", source)
        tenant_id = principal.tenant_id
        with self.gallery.store.transaction(tenant_id) as conn:
            removed = self.store.remove_connection(tenant_id, conn=conn)
            self.audit.append(tenant_id, actor=principal.actor, action="sign_in.disconnect", details={"removed": removed},
                              source=source, conn=conn)
        return removed

    @staticmethod
    def _validated(issuer: str, client_id: str, client_secret: str, claim: str,
                   rules: Sequence[str] | Sequence[tuple[str, Role]]) -> ProviderConfig:
        try:
            issuer = check_issuer((issuer or "").strip())
            parsed = parse_rules([r for r in rules if isinstance(r, str)]) + tuple(r for r in rules if isinstance(r, tuple))
        except SignInRefused as exc:
            raise InvalidInput(exc.message) from None
        client_id, client_secret = (client_id or "").strip(), (client_secret or "").strip()
        if not 0 < len(issuer) <= 400 or not 0 < len(client_id) <= 200:
            raise InvalidInput("issuer and client id are required (at most 400 and 200 characters)")
        if not 0 < len(client_secret) <= 1000:
            raise InvalidInput("the client secret is required (at most 1000 characters)")
        if not CLAIM.fullmatch(claim or ""):
            raise InvalidInput("the claim is a name such as 'groups' or 'roles'")
        if not parsed:
            raise InvalidInput("map at least one claim value to a role, e.g. faceward-searchers=searcher")
        return ProviderConfig(issuer, client_id, client_secret, RoleMapping(claim, parsed))

    def _open(self, record: ConnectionRecord) -> ProviderConfig:
        raw = self.gallery.vault.open_oidc_config(record.tenant_id, record.login_id, record.config_sealed)
        return ProviderConfig.from_json(raw)

    def _connected(self, login_id: str) -> tuple[str, ProviderConfig]:
        """The tenant and configuration behind a sign-in URL; one plain 404 for every other case."""
        tenant_id = self.store.tenant_of_login(login_id) if LOGIN_ID.fullmatch(login_id or "") else None
        record = self.store.connection(tenant_id) if tenant_id else None
        if record is None or record.login_id != login_id:
            raise NotFound("no such sign-in page")
        try:
            self.gallery.active_tenant(record.tenant_id)
        except Exception:
            raise NotFound("no such sign-in page") from None
        return record.tenant_id, self._open(record)

    # -- signing in ---------------------------------------------------------------------

    def begin(self, login_id: str, *, redirect_uri: str) -> Begun:
        tenant_id, config = self._connected(login_id)
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        verifier, binding = secrets.token_urlsafe(48), secrets.token_urlsafe(32)
        now = self._now()
        url = self.provider.authorization_url(config, redirect_uri=redirect_uri, state=state, nonce=nonce, verifier=verifier)
        self.store.add_pending(PendingRecord(_sha256(state), tenant_id, nonce, verifier, _sha256(binding), now,
                                             now + PENDING_LIFETIME))
        return Begun(url, binding)

    def complete(self, login_id: str, params: Mapping[str, str], *, binding: str | None, redirect_uri: str,
                 source: str) -> Session:
        """Finish a sign-in from the provider's redirect; :class:`SignInRefused` (audited) when anything is off."""
        tenant_id, config = self._connected(login_id)
        named: list[str] = []  # the person, once the provider's token has named them
        try:
            return self._complete(tenant_id, config, params, binding, redirect_uri, source, named)
        except (SignInRefused, ProviderUnreachable) as exc:
            reason = getattr(exc, "reason", exc.code)
            details = {"reason": reason, "issuer": config.issuer, "method": "oidc"}
            self.audit.append(tenant_id, actor=named[0] if named else ANONYMOUS, action="console.sign_in_refused",
                              details=details, source=source)
            raise

    def _complete(self, tenant_id: str, config: ProviderConfig, params: Mapping[str, str], binding: str | None,
                  redirect_uri: str, source: str, named: list[str]) -> Session:
        state = params.get("state") or ""
        pending = self.store.take_pending(tenant_id, _sha256(state)) if state else None
        now = self._now()
        if pending is None:
            raise SignInRefused(f"This sign-in link was already used or is unknown: {START_AGAIN}.", reason="replayed_state")
        if pending.expires_at <= now:
            raise SignInRefused(f"This sign-in took too long (over {PENDING_LIFETIME.seconds // 60} minutes): {START_AGAIN}.",
                                reason="expired_state")
        if not binding or not secrets.compare_digest(_sha256(binding), pending.binding):
            raise SignInRefused(f"This sign-in was started in another browser: {START_AGAIN}.", reason="browser_mismatch")
        if params.get("error"):
            raise SignInRefused(f"Your organisation's sign-in did not let you in ({params['error'][:80]}).",
                                reason="provider_denied")
        code = params.get("code") or ""
        if not code:
            raise SignInRefused(f"The identity provider sent no authorization code: {START_AGAIN}.", reason="no_code")
        token = self.provider.exchange(config, code=code, redirect_uri=redirect_uri, verifier=pending.verifier)
        identity = self.provider.identity(config, token, nonce=pending.nonce)
        named.append(person_actor(identity.issuer, identity.subject))
        role = config.mapping.role_for(identity.claims)
        if role is None:
            raise SignInRefused(
                f"You are signed in at your organisation, but none of your {config.mapping.claim!r} gives a role in "
                "faceward: ask your administrator to add you to a faceward group.", reason="no_mapped_role")
        person = self._remember(tenant_id, identity.issuer, identity.subject, identity.name, role, now)
        principal = Principal(tenant_id, person.id, role, person=Person(person.id, identity.issuer, identity.subject, identity.name))
        session = self.sessions.start_person(principal)
        self.gate.audit(principal, "console.sign_in", {"session": _session_ref(session.cookie), "method": "oidc",
                                                       "role": role.value}, source)
        return session

    def _remember(self, tenant_id: str, issuer: str, subject: str, name: str, role: Role, now: datetime) -> PersonRecord:
        vault = self.gallery.vault
        ident = vault.person_ident(tenant_id, issuer, subject)
        profile = {"issuer": issuer, "subject": subject, "name": name, "role": role.value}
        for _ in range(2):  # a first sign-in racing another of the same person: the loser updates the winner's row
            found = self.store.person_by_ident(tenant_id, ident)
            if found is not None:
                self.store.update_person(tenant_id, found.id, profile_sealed=vault.seal_person(tenant_id, found.id, profile),
                                         seen_at=now)
                return found
            person_id = new_id("p_")
            record = PersonRecord(person_id, tenant_id, ident, vault.seal_person(tenant_id, person_id, profile), now, now)
            try:
                self.store.add_person(record)
                return record
            except Conflict:
                continue
        raise SignInRefused(f"Your sign-in could not be recorded: {START_AGAIN}.", reason="person_conflict")

    # -- names for the audit timeline ---------------------------------------------------

    def actor_names(self, tenant_id: str, actors: Sequence[str]) -> dict[str, str]:
        """The display names of the people among ``actors`` (audit actors ``person:<issuer> <subject>``)."""
        vault = self.gallery.vault
        idents: dict[str, str] = {}
        for actor in set(actors):
            if actor.startswith("person:"):
                issuer, _, subject = actor.removeprefix("person:").partition(" ")
                idents[vault.person_ident(tenant_id, issuer, subject)] = actor
        names = {}
        for ident, record in self.store.people_by_ident(tenant_id, list(idents)).items():
            names[idents[ident]] = vault.open_person(tenant_id, record.id, record.profile_sealed)["name"]
        return names


def _view(record: ConnectionRecord, config: ProviderConfig) -> dict[str, Any]:
    return {**config.public(), "login_path": f"/console/login/{record.login_id}",
            "created_at": record.created_at, "updated_at": record.updated_at}


__all__ = ["Begun", "PENDING_LIFETIME", "SignInService"]
