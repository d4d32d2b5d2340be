"""Per-request telemetry: a request id, the request metrics, and one JSON log line per request.

Sits outside the refusing gates (rate gate, load shedding, body cap), so their refusals are
counted and logged with the code the client got. The route is the matched route's template
(``/v1/subjects/{subject_id}``), never the path; the caller is named by tenant id and key id
(or, for a console session, the principal's actor; a person signed in through the tenant's provider by
their opaque person id, ``person:p_...``), never by a name.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faceward.security.policy import Principal
from faceward.telemetry.logs import ACCESS_LOGGER
from faceward.telemetry.metrics import Telemetry

access = logging.getLogger(ACCESS_LOGGER)

PRINCIPAL_SCOPE_KEY = "faceward.principal"  # set by the authentication dependency (api.deps)
REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_ERROR_BODY_MAX = 8192


def request_id(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is a plain token (a proxy's), else a new one."""
    given = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


class RouteTemplates:
    """The API's route templates by method, from its OpenAPI paths (compiled on first use): what a
    request refused before routing (the gates) would have matched."""

    def __init__(self, paths: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self._paths = paths
        self._compiled: list[tuple[re.Pattern[str], set[str], str]] | None = None

    def find(self, path: str, method: str) -> str | None:
        if self._compiled is None:
            self._compiled = [(compile_path(template)[0], {m.upper() for m in item}, template)
                              for template, item in self._paths().items()]
        return next((t for regex, methods, t in self._compiled if method in methods and regex.match(path)), None)


def route_template(scope: Scope, status: int, templates: RouteTemplates | None = None) -> str:
    """The matched route's template, else the one the path would have matched. Bounded: never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    if templates is not None:
        found = templates.find(str(scope.get("path", "")), str(scope.get("method", "")))
        if found is not None:
            return found
    return "(unmatched)" if status == 404 else "(other)"


def error_code(body: bytes) -> str | None:
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) and len(code) <= 64 else None


class RequestTelemetryMiddleware:
    def __init__(self, app: ASGIApp, telemetry: Telemetry, templates: RouteTemplates | None = None) -> None:
        self.app = app
        self.telemetry = telemetry
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        started = time.perf_counter()
        status = 500
        error_json = False
        body = bytearray()

        async def observing_send(message: Message) -> None:
            nonlocal status, error_json
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = rid
                error_json = status >= 400 and headers.get("content-type", "").startswith("application/json")
            elif message["type"] == "http.response.body" and error_json and len(body) < _ERROR_BODY_MAX:
                body.extend(message.get("body", b"")[: _ERROR_BODY_MAX - len(body)])
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            self._record(scope, rid, status, time.perf_counter() - started, error_code(bytes(body)) if body else None)

    def _record(self, scope: Scope, rid: str, status: int, seconds: float, code: str | None) -> None:
        principal = scope.get(PRINCIPAL_SCOPE_KEY)
        tenant_id = principal.tenant_id if isinstance(principal, Principal) else None
        route = route_template(scope, status, self.templates)
        method = str(scope.get("method", ""))
        self.telemetry.observe_request(route, method, status, seconds, code, tenant_id)
        access.info(
            "request",
            extra={
                "request_id": rid, "method": method, "route": route, "status": status,
                "latency_ms": round(seconds * 1000, 2), "tenant_id": tenant_id,
                "actor": principal.log_actor if isinstance(principal, Principal) else None,
                "refusal": code if status >= 400 else None,
            },
        )


__all__ = ["PRINCIPAL_SCOPE_KEY", "RequestTelemetryMiddleware", "RouteTemplates"]
