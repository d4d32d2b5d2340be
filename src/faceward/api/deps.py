"""Typed dependencies: the services wired at start-up, and the caller behind a bearer token.

Nothing here decides what a caller may do; :mod:`faceward.services.operations` does,
through :func:`faceward.security.policy.authorize`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from faceward.api.middleware import PRINCIPAL
from faceward.api.observe import PRINCIPAL_SCOPE_KEY
from faceward.api.session import SESSION_COOKIE, console_principal, has_session_cookie
from faceward.security.errors import Unauthenticated
from faceward.security.policy import Principal
from faceward.services.operations import Operations
from faceward.settings import Settings
from faceward.wiring import Services

if TYPE_CHECKING:
    from faceward.services.accounts import AccountService
    from faceward.security.audit import AuditLog
    from faceward.services.gallery import GalleryService
    from faceward.services.sessions import Session
    from faceward.services.usage import UsageService


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_operations(request: Request) -> Operations:
    return get_services(request).operations


def client_source(request: Request) -> str:
    """The client's address as the audit log records it (the proxy's, behind one, unless
    uvicorn is started with ``--proxy-headers`` and a trusted ``--forwarded-allow-ips``)."""
    return f"api:{request.client.host}" if request.client else "api"


bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key, `fw_<key id>_<secret>`, as `Authorization: Bearer <key>`.",
)


NO_KEY = "an API key is required: Authorization: Bearer <key>"


def identifier(services: Services) -> Callable[[Headers, str | None], Principal | Session]:
    """What :class:`~faceward.api.middleware.AuthGateMiddleware` runs on a request's headers: the bearer
    key's principal, else the console cookie's session (its CSRF token is checked later, by the route's
    dependency), else 401."""

    def identify(headers: Headers, host: str | None) -> Principal | Session:
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credentials:
            return services.accounts.authenticate(credentials, source=f"api:{host}" if host else "api", address=host)
        cookie = cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE)
        if cookie:
            session: Session = services.console.sessions.resolve(cookie)
            return session
        raise Unauthenticated(NO_KEY, reason="no bearer token")

    return identify


def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The authenticated key, or 401 with the same plain message whatever was wrong with it.

    The gate in front of the API has usually authenticated the request already, from its headers;
    then its principal is taken as it is. Without a bearer token, the web console's session
    cookie is the other way in (:mod:`faceward.api.session`: CSRF token required on unsafe methods)."""
    if credentials is None:
        if not has_session_cookie(request):
            raise Unauthenticated(NO_KEY, reason="no bearer token")
        principal = console_principal(request)
    else:
        gated: Principal | None = request.scope.get("state", {}).get(PRINCIPAL)
        principal = gated or get_services(request).accounts.authenticate(
            credentials.credentials, source=client_source(request))
    request.scope[PRINCIPAL_SCOPE_KEY] = principal  # the request's log line and metrics name the caller by id
    return principal


@dataclass(frozen=True)
class Caller:
    principal: Principal
    source: str


def get_caller(request: Request, principal: Annotated[Principal, Depends(get_principal)]) -> Caller:
    return Caller(principal, client_source(request))


OperationsDep = Annotated[Operations, Depends(get_operations)]
CallerDep = Annotated[Caller, Depends(get_caller)]
ServicesDep = Annotated[Services, Depends(get_services)]
