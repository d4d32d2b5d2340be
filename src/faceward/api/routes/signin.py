"""Sign-in through the organisation's OpenID Connect provider (decision 021).

The admin's API (``SIGN_IN_MANAGE``):

* ``GET /v1/tenant/sign-in`` - the connection (never the secret) and the tenant's sign-in path;
* ``PUT /v1/tenant/sign-in`` - connect or change it;
* ``DELETE /v1/tenant/sign-in`` - disconnect (every person's session ends).

The browser's side (not in the OpenAPI document):

* ``GET /console/login/<login id>`` - starts a sign-in: a binding cookie (``fw_oidc``: HttpOnly,
  ``SameSite=Lax`` so that it comes back on the provider's redirect, scoped to this path, ten
  minutes) and a redirect to the provider;
* ``GET /console/login/<login id>/callback`` - the provider's redirect: the session cookies and a
  redirect into the console, or a page that says why the sign-in was refused (status 401).
"""

from __future__ import annotations

import html
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from faceward.api.deps import CallerDep, ServicesDep, client_source
from faceward.api.routes.common import AUTHED, errors
from faceward.api.routes.console import CONSOLE_CSP
from faceward.api.schemas import Strict, Utc
from faceward.api.session import clear_session_cookies, is_https, set_session_cookies
from faceward.security.oidc import ProviderUnreachable, SignInRefused
from faceward.services.signin import PENDING_LIFETIME

BINDING_COOKIE = "fw_oidc"

router = APIRouter(prefix="/v1", tags=["sign-in"])
browser = APIRouter(prefix="/console/login", include_in_schema=False)

RoleName = Literal["admin", "enroller", "searcher", "auditor"]


class RoleRule(Strict):
    value: Annotated[str, Field(min_length=1, max_length=200, description="A value of the claim, e.g. a group name.")]
    role: RoleName


class SignInProviderIn(Strict):
    issuer: Annotated[str, Field(min_length=8, max_length=400, pattern=r"^https?://\S+$",
                                 description="The provider's issuer URL (https; http only on loopback).")]
    client_id: Annotated[str, Field(min_length=1, max_length=200)]
    client_secret: Annotated[str, Field(min_length=1, max_length=1000, description="Kept sealed; never shown again.")]
    claim: Annotated[str, Field(default="groups", pattern=r"^[A-Za-z0-9_:./-]{1,64}$",
                                description="The ID token claim whose values map to roles.")]
    roles: Annotated[list[RoleRule], Field(min_length=1, max_length=50, description="In order; the first value a person has wins.")]


class RuleOut(BaseModel):
    value: str
    role: str


class SignInProviderOut(BaseModel):
    issuer: str
    client_id: str
    client_secret: str = Field(description="Always '**********'.")
    claim: str
    roles: list[RuleOut]
    login_path: str = Field(description="The tenant's console sign-in page: give this address to its people.")
    created_at: Utc
    updated_at: Utc


class SignInStatusOut(BaseModel):
    connected: bool
    provider: SignInProviderOut | None = None


def _out(view: dict[str, Any]) -> SignInProviderOut:
    mapping = view["mapping"]
    return SignInProviderOut(
        issuer=view["issuer"], client_id=view["client_id"], client_secret=view["client_secret"], claim=mapping["claim"],
        roles=[RuleOut(**r) for r in mapping["rules"]], login_path=view["login_path"], created_at=view["created_at"],
        updated_at=view["updated_at"],
    )


@router.get("/tenant/sign-in", response_model=SignInStatusOut, responses=errors(*AUTHED),
            summary="This organisation's sign-in provider (admin)")
def sign_in_provider(services: ServicesDep, caller: CallerDep) -> SignInStatusOut:
    view = services.signin.connection(caller.principal, source=caller.source)
    return SignInStatusOut(connected=view is not None, provider=_out(view) if view else None)


@router.put("/tenant/sign-in", response_model=SignInStatusOut, responses=errors(*AUTHED),
            summary="Connect this organisation's OpenID Connect provider (admin)")
def connect_sign_in_provider(body: SignInProviderIn, services: ServicesDep, caller: CallerDep) -> SignInStatusOut:
    view = services.signin.connect(
        caller.principal, issuer=body.issuer, client_id=body.client_id, client_secret=body.client_secret,
        claim=body.claim, rules=[f"{r.value}={r.role}" for r in body.roles], source=caller.source,
    )
    return SignInStatusOut(connected=True, provider=_out(view))


@router.delete("/tenant/sign-in", response_model=SignInStatusOut, responses=errors(*AUTHED),
               summary="Disconnect the sign-in provider (admin); people's console sessions end")
def disconnect_sign_in_provider(services: ServicesDep, caller: CallerDep) -> SignInStatusOut:
    services.signin.disconnect(caller.principal, source=caller.source)
    return SignInStatusOut(connected=False)


# -- the browser's side ---------------------------------------------------------------------

def _callback_uri(request: Request, login_id: str) -> str:
    return f"{request.url.scheme}://{request.url.netloc}/console/login/{login_id}/callback"


@browser.get("/{login_id}")
def begin(login_id: str, request: Request, services: ServicesDep) -> Response:
    try:
        begun = services.signin.begin(login_id, redirect_uri=_callback_uri(request, login_id))
    except ProviderUnreachable as exc:
        return _refusal(login_id, exc.message, 502)
    response = RedirectResponse(begun.url, status_code=303, headers={"cache-control": "no-store"})
    response.set_cookie(BINDING_COOKIE, begun.binding, max_age=int(PENDING_LIFETIME.total_seconds()),
                        path=f"/console/login/{login_id}", secure=is_https(request), httponly=True, samesite="lax")
    return response


@browser.get("/{login_id}/callback")
def callback(login_id: str, request: Request, services: ServicesDep) -> Response:
    params = {k: v for k, v in request.query_params.items() if k in ("code", "state", "error")}
    response: Response
    try:
        session = services.signin.complete(
            login_id, params, binding=request.cookies.get(BINDING_COOKIE),
            redirect_uri=_callback_uri(request, login_id), source=client_source(request).replace("api:", "console:", 1),
        )
    except (SignInRefused, ProviderUnreachable) as exc:
        response = _refusal(login_id, exc.message, exc.status)
    else:
        response = RedirectResponse("/console/", status_code=303, headers={"cache-control": "no-store"})
        clear_session_cookies(response, request)
        set_session_cookies(response, request, session)
    response.delete_cookie(BINDING_COOKIE, path=f"/console/login/{login_id}", secure=is_https(request), httponly=True,
                           samesite="lax")
    return response


def _refusal(login_id: str, message: str, status: int) -> HTMLResponse:
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign-in refused · faceward console</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/static/console.css"></head>
<body data-page="signin-refused"><header class="top"><span class="brand">faceward</span></header>
<main id="main"><div class="panel narrow"><h1>Sign-in refused</h1>
<p id="refusal" class="notice error" role="alert">{html.escape(message[:1].upper() + message[1:])}</p>
<div class="actions"><a id="again" href="/console/login/{html.escape(login_id)}">Sign in again</a></div>
</div></main></body></html>"""
    return HTMLResponse(body, status_code=status, headers={"content-security-policy": CONSOLE_CSP, "cache-control": "no-store"})


__all__ = ["BINDING_COOKIE", "browser", "router"]
