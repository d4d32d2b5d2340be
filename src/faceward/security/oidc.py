"""OpenID Connect, the relying party's side: a tenant's provider, its role mapping, and the checks on its tokens.

faceward signs people in with the authorization code flow and PKCE (S256), as a confidential
client (``client_secret_basic``), through authlib. What it trusts (decision 021):

* the provider's discovery document, fetched from ``<issuer>/.well-known/openid-configuration``
  over https (http only on loopback, for tests), whose ``issuer`` must equal the configured one;
* an ID token only if its signature verifies with a key of the provider's JWKS (asymmetric
  algorithms only: never ``none`` or HMAC with the client secret), its ``iss`` is the issuer,
  its ``aud`` holds our client id (and ``azp``, when present or when there are several audiences,
  is our client id), it has not expired and was not issued in the future (:data:`LEEWAY` of clock
  skew either way), and its ``nonce`` is the one this sign-in sent;
* the role only from the configured claim (``groups`` by default), first matching rule wins.

Nothing here touches the store or a key: :mod:`faceward.services.signin` seals the configuration
through the vault and keeps the pending state.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, InvalidTokenError, JoseError, MissingClaimError
from joserfc.jwk import KeySet

from faceward.security.errors import SecurityError
from faceward.security.permissions import Role

LEEWAY = 60
"""Seconds of clock skew allowed between the provider and this server, on ``exp``, ``iat`` and ``nbf``."""
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
SCOPE = "openid profile email"
CACHE_SECONDS = 3600.0
TIMEOUT = 10.0
DEFAULT_CLAIM = "groups"


class SignInRefused(SecurityError):
    """A console sign-in through the provider that faceward refuses; ``reason`` is a stable word for the audit log.

    The message is for the person at the browser: what happened and what to do, never a secret.
    """

    code = "sign_in_refused"
    status = 401

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ProviderUnreachable(SecurityError):
    code = "provider_unreachable"
    status = 502


@dataclass(frozen=True)
class RoleMapping:
    """Which value of which claim gives which role: ``rules`` in order, the first value the person has wins."""

    claim: str = DEFAULT_CLAIM
    rules: tuple[tuple[str, Role], ...] = ()

    def role_for(self, claims: Mapping[str, Any]) -> Role | None:
        value = claims.get(self.claim)
        held = {value} if isinstance(value, str) else {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()
        for wanted, role in self.rules:
            if wanted in held:
                return role
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"claim": self.claim, "rules": [{"value": v, "role": r.value} for v, r in self.rules]}


@dataclass(frozen=True)
class ProviderConfig:
    """A tenant's connection to its provider. The secret never prints (``repr`` shows asterisks)."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    mapping: RoleMapping = RoleMapping()

    def to_json(self) -> bytes:
        return json.dumps({"issuer": self.issuer, "client_id": self.client_id, "client_secret": self.client_secret,
                           "mapping": self.mapping.as_dict()}).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ProviderConfig:
        data = json.loads(raw)
        mapping = data["mapping"]
        rules = tuple((str(r["value"]), Role(r["role"])) for r in mapping["rules"])
        return cls(data["issuer"], data["client_id"], data["client_secret"], RoleMapping(mapping["claim"], rules))

    def public(self) -> dict[str, Any]:
        """What an admin may read back: everything but the secret."""
        return {"issuer": self.issuer, "client_id": self.client_id, "client_secret": "**********",
                "mapping": self.mapping.as_dict()}


def _client(config: ProviderConfig, **kwargs: Any) -> Any:
    """authlib's httpx OAuth 2 client, imported when a sign-in needs it: its module warns at import that it
    will move to ``httpx2`` (decision 021), which every CLI command would otherwise print."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from authlib.integrations.httpx_client import OAuth2Client
    return OAuth2Client(config.client_id, config.client_secret, **kwargs)


def check_issuer(issuer: str) -> str:
    """An issuer URL faceward will talk to: https, or http on a loopback address (tests, a provider beside it)."""
    try:
        httpx.URL(issuer)
        parts = urlsplit(issuer)
    except (httpx.InvalidURL, ValueError):
        raise SignInRefused("the issuer is not a valid URL", reason="bad_issuer") from None
    if parts.scheme == "https" and parts.hostname:
        return issuer
    if parts.scheme == "http" and parts.hostname and _loopback(parts.hostname):
        return issuer
    raise SignInRefused("the issuer must be an https:// URL (http:// only on a loopback address)", reason="insecure_issuer")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_rules(pairs: Sequence[str]) -> tuple[tuple[str, Role], ...]:
    """``["faceward-searchers=searcher", ...]`` as rules; a role that does not exist is refused by name."""
    rules = []
    for pair in pairs:
        value, sep, role = pair.rpartition("=")
        if not sep or not value:
            raise SignInRefused(f"a role rule is VALUE=ROLE, got {pair!r}", reason="bad_mapping")
        try:
            rules.append((value, Role(role.strip())))
        except ValueError:
            choices = ", ".join(r.value for r in Role)
            raise SignInRefused(f"no role {role!r} (choose from {choices})", reason="bad_mapping") from None
    return tuple(rules)


@dataclass(frozen=True)
class Endpoints:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None = None


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in: the claims of a checked ID token."""

    issuer: str
    subject: str
    name: str
    claims: Mapping[str, Any]


class Provider:
    """Talks to providers: discovery and JWKS (cached per issuer for an hour), the authorization URL, the code exchange."""

    def __init__(self, *, http: Callable[[], httpx.Client] | None = None, clock: Callable[[], float] = time.time) -> None:
        self._http = http or (lambda: httpx.Client(timeout=TIMEOUT, follow_redirects=False))
        self._clock = clock
        self._endpoints: dict[str, tuple[float, Endpoints]] = {}
        self._keys: dict[str, tuple[float, KeySet]] = {}
        self._lock = threading.Lock()

    def _get_json(self, url: str) -> dict[str, Any]:
        check_issuer(url)  # the same transport rule for every URL the provider names
        try:
            with self._http() as client:
                response = client.get(url, headers={"accept": "application/json"})
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            raise ProviderUnreachable(f"the identity provider could not be reached ({_why_unreachable(exc)})") from exc
        if not isinstance(data, dict):
            raise ProviderUnreachable("the identity provider answered with something other than a JSON object")
        return data

    def endpoints(self, issuer: str) -> Endpoints:
        now = self._clock()
        with self._lock:
            cached = self._endpoints.get(issuer)
        if cached and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        data = self._get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
        if data.get("issuer") != issuer:
            raise SignInRefused(
                f"the provider calls itself {data.get('issuer')!r}, not the configured issuer {issuer!r}",
                reason="wrong_issuer")
        try:
            found = Endpoints(issuer, str(data["authorization_endpoint"]), str(data["token_endpoint"]),
                              str(data["jwks_uri"]), data.get("end_session_endpoint"))
        except KeyError as missing:
            raise ProviderUnreachable(f"the provider's discovery document lacks {missing}") from None
        with self._lock:
            self._endpoints[issuer] = (now, found)
        return found

    def _key_set(self, endpoints: Endpoints, *, fresh: bool = False) -> KeySet:
        now = self._clock()
        with self._lock:
            cached = self._keys.get(endpoints.issuer)
        if cached and not fresh and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        keys = KeySet.import_key_set(self._get_json(endpoints.jwks_uri))  # type: ignore[arg-type]
        with self._lock:
            self._keys[endpoints.issuer] = (now, keys)
        return keys

    def authorization_url(self, config: ProviderConfig, *, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        endpoints = self.endpoints(config.issuer)
        client = _client(config, scope=SCOPE, redirect_uri=redirect_uri, code_challenge_method="S256")
        url, _ = client.create_authorization_url(endpoints.authorization_endpoint, state=state, code_verifier=verifier,
                                                 nonce=nonce)
        return str(url)

    def exchange(self, config: ProviderConfig, *, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        """The token response for ``code`` (PKCE verifier and client secret sent); refused if it has no ID token."""
        endpoints = self.endpoints(config.issuer)
        try:
            with _client(config, redirect_uri=redirect_uri, token_endpoint_auth_method="client_secret_basic",
                         timeout=TIMEOUT) as client:
                token = client.fetch_token(endpoints.token_endpoint, grant_type="authorization_code", code=code,
                                           code_verifier=verifier)
        except httpx.HTTPError as exc:
            raise ProviderUnreachable(
                f"the identity provider's token endpoint could not be reached ({_why_unreachable(exc)})") from exc
        except Exception as exc:  # authlib's OAuthError: the provider refused the code
            raise SignInRefused(f"the identity provider refused to complete the sign-in{_oauth_error(exc)}",
                                reason="code_refused") from exc
        if not token.get("id_token"):
            raise SignInRefused("the identity provider sent no ID token", reason="no_id_token")
        return dict(token)

    def identity(self, config: ProviderConfig, token: Mapping[str, Any], *, nonce: str, now: float | None = None) -> Identity:
        """Check the ID token of ``token`` (see the module's docstring); :class:`SignInRefused` names what failed."""
        endpoints = self.endpoints(config.issuer)
        raw = str(token["id_token"])
        decoded = self._decode(endpoints, raw)
        claims = CodeIDToken(
            decoded.claims, decoded.header,
            options={"iss": {"essential": True, "value": config.issuer}, "sub": {"essential": True}},
            params={"nonce": nonce, "client_id": config.client_id, "access_token": token.get("access_token")},
        )
        _check_audience(claims, config.client_id)
        try:
            claims.validate(now=int(now if now is not None else self._clock()), leeway=LEEWAY)
        except ExpiredTokenError:
            raise SignInRefused("the identity provider's token has expired: sign in again (if this repeats, the "
                                "provider's and faceward's clocks disagree)", reason="expired_token") from None
        except (InvalidClaimError, MissingClaimError) as exc:
            claim = getattr(exc, "claim", "") or str(exc)
            reason = {"iss": "wrong_issuer", "nonce": "wrong_nonce", "azp": "wrong_audience", "aud": "wrong_audience",
                      "iat": "issued_in_future", "nbf": "not_yet_valid"}.get(claim, "invalid_token")
            raise SignInRefused(f"the identity provider's token was refused: claim {claim!r} is not acceptable",
                                reason=reason) from None
        except JoseError as exc:
            raise SignInRefused("the identity provider's token was refused", reason=f"invalid_token:{exc.error}") from None
        if decoded.claims.get("nonce") != nonce:
            raise SignInRefused("the identity provider's token belongs to another sign-in", reason="wrong_nonce")
        subject = str(claims["sub"])
        name = next((str(claims[k]) for k in ("name", "preferred_username", "email") if claims.get(k)), subject)
        return Identity(config.issuer, subject, name[:200], dict(decoded.claims))

    def _decode(self, endpoints: Endpoints, raw: str) -> jwt.Token:
        for fresh in (False, True):  # a key the cached set lacks: the provider may have rotated; fetch once more
            try:
                return jwt.decode(raw, self._key_set(endpoints, fresh=fresh), algorithms=list(ALGORITHMS))
            except (InvalidTokenError, JoseError, ValueError) as exc:
                last = exc
        raise SignInRefused("the identity provider's token is not signed by the provider", reason="bad_signature") from last


def _why_unreachable(exc: Exception) -> str:
    """Why a request to the provider failed, in words for the person who connects it (never a class name)."""
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {TIMEOUT:g} seconds"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"it answered HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.ConnectError):
        return "no connection could be made to it"
    if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
        return "its address is not a usable URL"
    if isinstance(exc, ValueError):
        return "its answer is not JSON"
    return "the connection failed"


def _oauth_error(exc: Exception) -> str:
    """The provider's OAuth error code (RFC 6749 5.2, e.g. `` (invalid_grant)``), or nothing: never None or a class name."""
    error = getattr(exc, "error", None)
    return f" ({error})" if isinstance(error, str) and error.strip() else ""


def _check_audience(claims: Mapping[str, Any], client_id: str) -> None:
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else list(aud) if isinstance(aud, list) else []
    if client_id not in audiences:
        raise SignInRefused(
            "the identity provider issued this token for another application (audience "
            f"{', '.join(map(str, audiences)) or 'none'}), not faceward's client id: ask your administrator to check "
            "the client id faceward was connected with", reason="wrong_audience")
    if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != client_id:
        raise SignInRefused("the identity provider issued this token to another party (azp)", reason="wrong_audience")


def pkce_pair(verifier: str) -> str:
    """The S256 challenge of ``verifier`` (what the authorization URL carries)."""
    return str(create_s256_code_challenge(verifier))


__all__ = [
    "ALGORITHMS", "DEFAULT_CLAIM", "Endpoints", "Identity", "LEEWAY", "Provider", "ProviderConfig",
    "ProviderUnreachable", "RoleMapping", "SCOPE", "SignInRefused", "check_issuer", "parse_rules", "pkce_pair",
]
