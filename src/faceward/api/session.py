"""The web console's cookie: the other way (beside ``Authorization: Bearer``) a request authenticates.

* ``fw_session`` - ``<tenant id>.<secret>``; ``HttpOnly; SameSite=Strict; Path=/``, and
  ``Secure`` when the request came over https. The server keeps only the secret's hash
  (:mod:`faceward.services.sessions`).
* ``fw_csrf`` - the session's CSRF token, readable by the console's scripts (not
  ``HttpOnly``), same attributes otherwise. Every request that authenticates with the
  cookie and is not GET/HEAD/OPTIONS must echo it in ``X-CSRF-Token``; the server checks
  it against the session (it is an HMAC of the session's secret), so a planted cookie
  does not help. A missing or wrong token is a 403 ``csrf_failed``, audited.

A request with a bearer token is authenticated by the token alone, exactly as before;
the cookie is not looked at.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from fastapi import Request, Response

from faceward.security.errors import Forbidden, Unauthenticated
from faceward.security.policy import Principal
from faceward.services.sessions import Session

log = logging.getLogger("faceward.api")

SESSION_COOKIE = "fw_session"
CSRF_COOKIE = "fw_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRejected(Forbidden):
    code = "csrf_failed"


def has_session_cookie(request: Request) -> bool:
    return bool(request.cookies.get(SESSION_COOKIE))


def console_session(request: Request) -> Session:
    """The live session of the request's cookie (401 otherwise); unsafe methods must carry its CSRF token (403)."""
    services = request.app.state.services
    sessions = services.console.sessions
    gated: Session | None = request.scope.get("state", {}).get("console_session")  # resolved by the API's gate
    session: Session = gated or sessions.resolve(request.cookies.get(SESSION_COOKIE))
    if request.method not in SAFE_METHODS and not sessions.csrf_ok(session, request.headers.get(CSRF_HEADER)):
        principal = session.principal
        details = {"act": f"{request.method} {request.url.path}"[:200], "reason": "missing or wrong CSRF token"}
        try:
            services.audit.append(principal.tenant_id, actor=principal.actor, action="console.csrf_failed",
                                    details=details, source=_source(request))
        except Exception:  # the refusal stands whether or not it could be recorded
            log.exception("could not audit a CSRF failure of key %s", principal.key_id)
        raise CsrfRejected(
            "this request lacks the console session's CSRF token (X-CSRF-Token); reload the page and try again",
            reason="csrf",
        )
    return session


def console_principal(request: Request) -> Principal:
    return console_session(request).principal


def _source(request: Request) -> str:
    return f"console:{request.client.host}" if request.client else "console"


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookies(response: Response, request: Request, session: Session) -> None:
    secure = is_https(request)
    max_age = max(0, int((session.expires_at - datetime.now(timezone.utc)).total_seconds()))
    response.set_cookie(SESSION_COOKIE, session.cookie, max_age=max_age, path="/", secure=secure, httponly=True,
                        samesite="strict")
    response.set_cookie(CSRF_COOKIE, session.csrf_token, max_age=max_age, path="/", secure=secure, httponly=False,
                        samesite="strict")


def clear_session_cookies(response: Response, request: Request) -> None:
    secure = is_https(request)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="strict")
    response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, httponly=False, samesite="strict")


__all__ = [
    "CSRF_COOKIE", "CSRF_HEADER", "SESSION_COOKIE", "CsrfRejected", "clear_session_cookies", "console_principal",
    "console_session", "has_session_cookie", "set_session_cookies",
]
