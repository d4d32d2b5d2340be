"""Web console sessions: an API key exchanged once for a cookie, with a CSRF token bound to it.

Signing in checks the key exactly as a bearer request would
(:meth:`AccountService.authenticate`), then stores a session row holding the
SHA-256 of a fresh 256-bit secret, the key id and the expiry (never the key, nor
the secret). The browser gets the cookie value ``<tenant id>.<secret>``; the tenant
id lets the lookup run under that tenant's row-level security.

Every request made with the cookie reads the session *and the key* again: an
expired (absolute :data:`LIFETIME`) or idle (:data:`IDLE`) session, a revoked or
expired key, or a suspended tenant ends it at once, with the same plain 401 a bad
bearer token gets. Signing out deletes the row.

A person signed in through the tenant's OpenID Connect provider (:mod:`faceward.services.signin`)
gets the same kind of session in ``person_sessions``, cookie ``<tenant id>.p.<secret>``: each
request reads the session and the person again (their role is the one the provider's claims
mapped to at their latest sign-in), and the same lifetimes apply.

The CSRF token is ``HMAC-SHA256(secret, "faceward/console-csrf/v1")``: the server can
check it without storing it, an attacker who can plant cookies cannot forge one for a
victim's session, and it changes with every session. The console reads it from a
readable cookie and echoes it in ``X-CSRF-Token`` (double submit).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from faceward.errors import NotFound
from faceward.security.errors import Unauthenticated
from faceward.security.permissions import Role
from faceward.security.policy import Person, Principal
from faceward.services.accounts import AccountService
from faceward.store.accounts import AccountStore, utc
from faceward.store.people import OidcStore, PersonSessionRecord
from faceward.store.reviews import SessionRecord, SessionStore

LIFETIME = timedelta(hours=8)
IDLE = timedelta(minutes=30)
TOUCH_INTERVAL = timedelta(minutes=1)
COOKIE = re.compile(r"(t_[0-9a-f]{28})\.(p\.)?([A-Za-z0-9_-]{43})")
CSRF_LABEL = b"faceward/console-csrf/v1"
ENDED = "your console session has ended; sign in again"


@dataclass(frozen=True)
class Session:
    """A live session: who it is, its CSRF token and when it ends. ``cookie`` only when just started."""

    principal: Principal
    csrf_token: str
    expires_at: datetime
    cookie: str = ""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(secret: str) -> str:
    mac = hmac.new(secret.encode(), CSRF_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


class ConsoleSessions:
    def __init__(self, accounts: AccountService) -> None:
        self.accounts = accounts
        self.gallery = accounts.gallery
        self._sessions = SessionStore(accounts.store)
        self._keys = AccountStore(accounts.store)
        self._people = OidcStore(accounts.store)

    def _now(self) -> datetime:
        return utc(self.gallery.clock())

    def start(self, token: str, *, source: str | None) -> Session:
        """Authenticate ``token`` (an API key) and open a session for it."""
        principal = self.accounts.authenticate(token, source=source)
        secret = secrets.token_urlsafe(32)
        now = self._now()
        record = SessionRecord(_digest(secret), principal.tenant_id, principal.key_id, now, now + LIFETIME, now)
        self._sessions.add(record)
        return Session(principal, csrf_token(secret), record.expires_at, cookie=f"{principal.tenant_id}.{secret}")

    def start_person(self, principal: Principal) -> Session:
        """Open a session for a person the provider has just vouched for (:mod:`faceward.services.signin`)."""
        secret = secrets.token_urlsafe(32)
        now = self._now()
        record = PersonSessionRecord(_digest(secret), principal.tenant_id, principal.key_id, now, now + LIFETIME, now)
        self._people.add_session(record)
        return Session(principal, csrf_token(secret), record.expires_at, cookie=f"{principal.tenant_id}.p.{secret}")

    def resolve(self, cookie: str | None) -> Session:
        """The live session behind a cookie, or :class:`Unauthenticated` (one message for every cause)."""
        match = COOKIE.fullmatch(cookie or "")
        if match is None:
            raise Unauthenticated(ENDED, reason="malformed console cookie")
        tenant_id, person, secret = match.groups()
        if person:
            return self._resolve_person(tenant_id, secret)
        record = self._sessions.get(tenant_id, _digest(secret))
        now = self._now()
        if record is None:
            raise Unauthenticated(ENDED, reason="unknown console session")
        if record.expires_at <= now or now - record.seen_at > IDLE:
            self._sessions.remove(tenant_id, record.id)
            raise Unauthenticated(ENDED, reason="console session expired")
        principal = self._principal(tenant_id, record.key_id, now)
        if now - record.seen_at >= TOUCH_INTERVAL:
            self._sessions.touch(tenant_id, record.id, at=now)
        return Session(principal, csrf_token(secret), record.expires_at)

    def _resolve_person(self, tenant_id: str, secret: str) -> Session:
        record = self._people.session(tenant_id, _digest(secret))
        now = self._now()
        if record is None:
            raise Unauthenticated(ENDED, reason="unknown console session")
        if record.expires_at <= now or now - record.seen_at > IDLE:
            self._people.remove_session(tenant_id, record.id)
            raise Unauthenticated(ENDED, reason="console session expired")
        try:
            tenant = self.gallery.store.get_tenant(tenant_id)
        except NotFound:
            raise Unauthenticated(ENDED, reason="console session of a deleted tenant") from None
        person = self._people.person(tenant_id, record.person_id)
        if tenant.wrapped_key is None or tenant.status != "active" or person is None:
            raise Unauthenticated(ENDED, reason=f"tenant {tenant.status}" if person else "console session of a removed person")
        profile = self.gallery.vault.open_person(tenant_id, person.id, person.profile_sealed)
        principal = Principal(tenant_id, person.id, Role(profile["role"]),
                              person=Person(person.id, profile["issuer"], profile["subject"], profile["name"]))
        if now - record.seen_at >= TOUCH_INTERVAL:
            self._people.touch_session(tenant_id, record.id, at=now)
        return Session(principal, csrf_token(secret), record.expires_at)

    def _principal(self, tenant_id: str, key_id: str, now: datetime) -> Principal:
        try:
            tenant = self.gallery.store.get_tenant(tenant_id)
            key = self._keys.get_key(tenant_id, key_id)
        except NotFound:
            raise Unauthenticated(ENDED, reason="console session of a deleted key or tenant") from None
        if tenant.wrapped_key is None or tenant.status != "active":
            raise Unauthenticated(ENDED, reason=f"tenant {tenant.status}")
        if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
            raise Unauthenticated(ENDED, reason="console session of a revoked or expired key")
        return Principal(tenant_id, key_id, self.gallery.vault.open_key_role(key))

    def end(self, cookie: str | None) -> bool:
        """Delete the session behind ``cookie``; False when there was none."""
        match = COOKIE.fullmatch(cookie or "")
        if match is None:
            return False
        tenant_id, person, secret = match.groups()
        if person:
            return self._people.remove_session(tenant_id, _digest(secret))
        return self._sessions.remove(tenant_id, _digest(secret))

    @staticmethod
    def csrf_ok(session: Session, header: str | None) -> bool:
        return bool(header) and hmac.compare_digest(session.csrf_token.encode(), (header or "").encode())


__all__ = ["ConsoleSessions", "IDLE", "LIFETIME", "Session", "csrf_token"]
