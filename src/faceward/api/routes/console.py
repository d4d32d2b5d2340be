"""The web console at ``/console``: its pages and assets (shipped in ``faceward/web/static``), and its session.

The pages are plain HTML, CSS and JavaScript modules that call the REST API under
``/v1`` and nothing else; no asset comes from another origin. Every page is served
with a strict Content-Security-Policy (:data:`CONSOLE_CSP`: same-origin scripts and
styles only, no inline script, images also from ``blob:`` and ``data:`` URLs for the
photos a user picks). What a page shows follows the role of the key behind the
session; the API enforces the same rules on every call.

Session routes (not in the OpenAPI document; see :mod:`faceward.api.session`):

* ``POST /console/session`` ``{"api_key": ...}`` - sign in: sets the cookies, returns who you are;
* ``GET /console/session`` - who you are, your permissions and CSRF token (401 if signed out);
* ``DELETE /console/session`` - sign out (CSRF token required).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from pydantic import Field
from starlette.exceptions import HTTPException

from faceward.api.deps import client_source, get_services
from faceward.api.routes.review import review_ops
from faceward.api.schemas import Strict
from faceward.api.session import (
    SESSION_COOKIE,
    clear_session_cookies,
    console_session,
    set_session_cookies,
)
from faceward.errors import InvalidInput
from faceward.security.errors import Forbidden
from faceward.security.policy import permissions_of
from faceward.services.sessions import Session
from faceward.text import rfc3339

STATIC = Path(__file__).resolve().parents[2] / "web" / "static"
PAGES = ("search", "review", "enroll", "subjects", "audit", "usage", "keys")
CONSOLE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon"}

router = APIRouter(prefix="/console", include_in_schema=False)


class SignIn(Strict):
    api_key: Annotated[str, Field(min_length=1, max_length=200)]


@lru_cache(maxsize=1)
def assets() -> dict[str, Path]:
    """Every file under ``web/static`` by its relative path: the only files the console serves."""
    return {p.relative_to(STATIC).as_posix(): p for p in STATIC.rglob("*") if p.is_file() and p.suffix in TYPES}


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / f"{name}.html", media_type=TYPES[".html"],
                        headers={"content-security-policy": CONSOLE_CSP, "cache-control": "no-store"})


def _who(session: Session) -> dict[str, Any]:
    principal = session.principal
    return {
        "tenant_id": principal.tenant_id, "key_id": principal.key_id, "role": principal.role.value,
        "permissions": sorted(p.value for p in permissions_of(principal.role)),
        "csrf_token": session.csrf_token, "expires_at": rfc3339(session.expires_at),
        "person": ({"name": principal.person.name, "issuer": principal.person.issuer, "subject": principal.person.subject}
                   if principal.person else None),
    }


def _same_origin(request: Request) -> None:
    """Browsers send Origin on POST and DELETE; one that names another site is refused (login CSRF)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden("requests from another site cannot use the console", reason="cross-origin")


@router.get("")
def console_root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=307)


@router.get("/")
def sign_in_page() -> FileResponse:
    return _page("index")


@router.post("/session")
def sign_in(body: SignIn, request: Request) -> JSONResponse:
    _same_origin(request)
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise InvalidInput("send the API key as JSON", code="invalid_request")
    ops = review_ops(get_services(request))
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        ops.sessions.end(old)
    session = ops.sign_in(body.api_key.strip(), source=client_source(request))
    response = JSONResponse(_who(session), status_code=201)
    set_session_cookies(response, request, session)
    return response


@router.get("/session")
def who_am_i(request: Request) -> JSONResponse:
    return JSONResponse(_who(console_session(request)))


@router.delete("/session")
def sign_out(request: Request) -> Response:
    _same_origin(request)
    session = console_session(request)
    review_ops(get_services(request)).sign_out(
        session.principal, request.cookies.get(SESSION_COOKIE, ""), source=client_source(request)
    )
    response = Response(status_code=204)
    clear_session_cookies(response, request)
    return response


@router.get("/static/{name:path}")
def asset(name: str) -> FileResponse:
    path = assets().get(name)
    if path is None:
        raise HTTPException(404, "no such console asset")
    return FileResponse(path, media_type=TYPES[path.suffix], headers={"cache-control": "no-cache"})


@router.get("/{page}")
def page(page: str) -> FileResponse:
    if page not in PAGES:
        raise HTTPException(404, "no such console page")
    return _page(page)


__all__ = ["CONSOLE_CSP", "PAGES", "router"]
