"""Pure ASGI middleware: security headers, authentication from the headers, body intake, load
shedding and the last-resort 500.

Order, outermost first: :class:`SecurityHeadersMiddleware` (so every response carries the
headers, errors included) -> :class:`CatchAllMiddleware` -> :class:`AuthGateMiddleware` ->
:class:`BodyIntakeMiddleware` -> :class:`LoadShedMiddleware` -> FastAPI's routing and exception
handlers. A ``/v1`` request is authenticated and rate-gated from its headers before a byte of
its body is read; its body is read whole, under a size cap and a read deadline and within a
budget of concurrent reads, before it may take an in-flight slot. So neither a caller without
a valid key nor a slow body holds a slot that valid requests need (decision 014).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import anyio.to_thread
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faceward.api.errors import INTERNAL_MESSAGE, error_response, exception_response
from faceward.api.observe import PRINCIPAL_SCOPE_KEY
from faceward.errors import FacewardError
from faceward.security.policy import Principal
from faceward.security.ratelimit import Bucket, key_rate_limited
from faceward.services.sessions import Session

log = logging.getLogger("faceward.api")

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

SECURITY_HEADERS = {
    "content-security-policy": API_CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class SecurityHeadersMiddleware:
    """Adds :data:`SECURITY_HEADERS` to every response (a route may set its own CSP, as /docs does)
    and drops any ``server`` header the application set."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if "server" in headers:
                    del headers["server"]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CatchAllMiddleware:
    """Any exception that escaped the handlers: log it with its trace, answer a bare 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                return  # the client gets a cut-short response; nothing more can be sent
            await error_response(500, "internal_error", INTERNAL_MESSAGE)(scope, receive, send)


class LoadShedMiddleware:
    """Refuses work past ``max_in_flight`` concurrent API requests with an immediate 503 and ``Retry-After``.

    Runs on the event loop, ahead of the thread pool where face analysis queues: past
    saturation a client gets a fast, explicit "come back later" instead of a long wait that
    ends in its own timeout. ``/healthz`` and the console's static assets are never shed.
    """

    def __init__(self, app: ASGIApp, max_in_flight: int, retry_after: int = 1) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.retry_after = retry_after
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            response = error_response(
                503, "overloaded", "the service is at capacity; retry shortly",
                headers={"retry-after": str(self.retry_after)},
            )
            await response(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


Identify = Callable[[Headers, str | None], Principal | Session]
"""``(request headers, client address) -> the caller``, or a :class:`FacewardError` (401, 429, 503)."""

PRINCIPAL = "principal"
CONSOLE_SESSION = "console_session"


def has_body(headers: Headers) -> bool:
    return headers.get("content-length", "0").strip() not in ("", "0") or "transfer-encoding" in headers


def _closing(headers: Headers, extra: dict[str, str] | None = None) -> dict[str, str]:
    # A refusal sent before the body was read ends the connection, so the client cannot keep trickling into it.
    out = dict(extra or {})
    if has_body(headers):
        out["connection"] = "close"
    return out


class AuthGateMiddleware:
    """Authenticates every ``/v1`` request from its headers, before its body is read or it takes a slot.

    ``identify`` (run on the thread pool: it reads the store) turns the bearer key or the console
    cookie into the caller; any failure (401, or 429 once failures pass their throttle) is answered
    at once, closing the connection if a body was announced. A valid key whose token bucket is
    already empty gets 429 with ``Retry-After`` (the bucket is the one the use cases take from;
    this gate only peeks). The caller is left in the request's state for
    :func:`faceward.api.deps.get_principal`, which does not authenticate again.
    """

    def __init__(self, app: ASGIApp, identify: Identify, bucket: Bucket) -> None:
        self.app = app
        self.identify = identify
        self.bucket = bucket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        client = scope.get("client")
        try:
            caller = await anyio.to_thread.run_sync(self.identify, headers, client[0] if client else None)
        except FacewardError as exc:
            response = exception_response(exc, f"{scope.get('method')} {scope.get('path')}")
            response.headers.update(_closing(headers))
            await response(scope, receive, send)
            return
        principal = caller.principal if isinstance(caller, Session) else caller
        scope[PRINCIPAL_SCOPE_KEY] = principal  # the request's log line names the caller, refused or not
        wait = self.bucket.peek(principal.key_id)
        if wait > 0:
            refusal = key_rate_limited(wait)  # the same refusal the use cases raise
            closing = _closing(headers, {"retry-after": str(refusal.retry_after)})
            await error_response(refusal.status, refusal.code, refusal.message, closing)(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state[PRINCIPAL] = principal
        if isinstance(caller, Session):
            state[CONSOLE_SESSION] = caller
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class IntakeBudget:
    """How many request bodies may be read at once, and how slowly.

    ``uploads`` bodies of authenticated callers, at most ``uploads_per_key`` of them per key;
    ``unauthenticated`` bodies of everyone else (console sign-in). A body must arrive at
    ``min_rate`` bytes a second on average after ``grace`` seconds, or it is cut off with 408.
    """

    uploads: int = 32
    uploads_per_key: int = 4
    unauthenticated: int = 4
    min_rate: float = 8192.0
    grace: float = 5.0


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message


class BodyIntakeMiddleware:
    """Reads a request's whole body, within the caps, before the request goes further in.

    * A declared ``Content-Length`` over the route's cap (``limit_for(path, method)``) is refused
      at once with 413, without reading a byte; a chunked body is counted as it streams.
    * Reading takes a place in the :class:`IntakeBudget` (authenticated callers by key, everyone
      else in their own small pool): past it, an immediate 503 with ``Retry-After``.
    * A body slower than the budget's rate is cut off with 408 and the connection closed.

    Then the body is handed on whole, so a slow upload never holds an in-flight slot.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str, str], int], budget: IntakeBudget | None = None,
                 *, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.limit_for = limit_for
        self.budget = budget or IntakeBudget()
        self.clock = clock
        self.uploads = 0
        self.unauthenticated = 0
        self.by_key: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = self.limit_for(scope.get("path", ""), scope.get("method", "GET"))
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await error_response(400, "bad_request", "the Content-Length header is malformed",
                                     {"connection": "close"})(scope, receive, send)
                return
            if int(declared) > limit:
                await error_response(413, "body_too_large", f"the request body is larger than {limit} bytes",
                                     {"connection": "close"})(scope, receive, send)
                return
        if not has_body(headers):
            await self.app(scope, receive, send)
            return
        principal: Principal | None = scope.get("state", {}).get(PRINCIPAL)
        if not self._enter(principal):
            await error_response(503, "overloaded", "too many uploads are being received; retry shortly",
                                 {"retry-after": "1", "connection": "close"})(scope, receive, send)
            return
        try:
            body = await self._read(receive, limit)
        except _Refused as refusal:
            await error_response(refusal.status, refusal.code, refusal.message,
                                 {"connection": "close"})(scope, receive, send)
            return
        finally:
            self._leave(principal)
        if body is None:
            return  # the client went away
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)

    def _enter(self, principal: Principal | None) -> bool:
        # Single-threaded (the event loop): no lock needed.
        if principal is None:
            if self.unauthenticated >= self.budget.unauthenticated:
                return False
            self.unauthenticated += 1
            return True
        if self.uploads >= self.budget.uploads or self.by_key[principal.key_id] >= self.budget.uploads_per_key:
            return False
        self.uploads += 1
        self.by_key[principal.key_id] += 1
        return True

    def _leave(self, principal: Principal | None) -> None:
        if principal is None:
            self.unauthenticated -= 1
            return
        self.uploads -= 1
        self.by_key[principal.key_id] -= 1
        if self.by_key[principal.key_id] <= 0:
            del self.by_key[principal.key_id]

    async def _read(self, receive: Receive, limit: int) -> bytes | None:
        chunks: list[bytes] = []
        received = 0
        started = self.clock()
        while True:
            left = started + self.budget.grace + received / self.budget.min_rate - self.clock()
            try:
                if left <= 0:
                    raise asyncio.TimeoutError
                message = await asyncio.wait_for(receive(), left)
            except asyncio.TimeoutError:
                raise _Refused(408, "body_too_slow",
                               f"the request body arrived too slowly (under {int(self.budget.min_rate)} bytes a "
                               "second); send it faster") from None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                raise _Refused(413, "body_too_large", f"the request body is larger than {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
