"""Pure ASGI middleware: security headers, the request body cap, and the last-resort 500.

Order, outermost first: :class:`SecurityHeadersMiddleware` (so every response carries
the headers, errors included) -> :class:`CatchAllMiddleware` -> :class:`RateGateMiddleware`
-> :class:`LoadShedMiddleware` -> :class:`BodyLimitMiddleware` -> FastAPI's routing and
exception handlers. The two refusing gates sit before any body is read or key is checked, so a
refusal costs microseconds however hard a client pushes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faceward.api.errors import INTERNAL_MESSAGE, error_response
from faceward.security.apikeys import parse_token
from faceward.services.ratelimit import TokenBucket, key_rate_limited

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


class BodyTooLarge(HTTPException):
    code = "body_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodyLimitMiddleware:
    """Caps request bodies before they are read into memory.

    A declared ``Content-Length`` over the cap is refused at once, without reading a byte;
    a body without one (chunked) is counted as it streams and refused as soon as it passes
    the cap. ``limit_for(path, method)`` gives the cap of a request.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str, str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""), scope.get("method", "GET"))
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0 or not declared.strip().isdigit():
                await error_response(400, "bad_request", "the Content-Length header is malformed")(scope, receive, send)
                return
            if length > limit:
                error = BodyTooLarge(limit)
                await error_response(413, error.code, str(error.detail), {"connection": "close"})(scope, receive, send)
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)


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


class RateGateMiddleware:
    """Answers 429 with ``Retry-After`` at once to a bearer key whose token bucket is already empty.

    The bucket is the one the use cases take from after authentication
    (:class:`~faceward.services.operations.Operations`); this gate only peeks at it, so a caller
    who merely names a key id cannot drain another's tokens, and a key past its rate is refused
    before its upload is parsed, its key checked or an in-flight slot taken.
    """

    def __init__(self, app: ASGIApp, bucket: TokenBucket) -> None:
        self.app = app
        self.bucket = bucket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith("/v1/"):
            authorization = Headers(scope=scope).get("authorization", "")
            scheme, _, credentials = authorization.partition(" ")
            token = parse_token(credentials) if scheme.lower() == "bearer" else None
            wait = self.bucket.peek(token.key_id) if token is not None else 0.0
            if wait > 0:
                refusal = key_rate_limited(wait)  # the same refusal the use cases raise
                headers = {"retry-after": str(refusal.retry_after)}
                await error_response(refusal.status, refusal.code, refusal.message, headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)
