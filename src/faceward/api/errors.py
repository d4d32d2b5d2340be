"""The one map from failures to HTTP responses: ``{"error": {"code": ..., "message": ...}}``.

* :class:`~faceward.errors.FacewardError` - its own ``status`` and ``code``; its message,
  except for 5xx errors, whose details stay in the server log (503 keeps its message: the
  client may retry), and its ``public_message`` instead where it has one.
* ``RequestValidationError`` - 422, code ``invalid_request``, the fields at fault (never their values).
* Starlette's ``HTTPException`` (unknown route, wrong method, unparseable body) - its status,
  a code named after it.
* Anything else - 500, code ``internal_error``, no stack trace; logged with one
  (:class:`~faceward.api.middleware.CatchAllMiddleware`).

401 carries ``WWW-Authenticate: Bearer`` and 429 ``Retry-After``.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from faceward.errors import FacewardError
from faceward.text import text_problem

log = logging.getLogger("faceward.api")

MESSAGE_MAX = 1000
INTERNAL_MESSAGE = "internal error; the server log has the details"


def _safe(text: str) -> str:
    # Messages can quote client input (a field name); keep them short and encodable.
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 1] + "\u2026"


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": _safe(message)}}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def status_code_name(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def exception_response(exc: FacewardError, what: str) -> JSONResponse:
    """The response to a domain error raised while handling ``what`` (method and path, for the log)."""
    status = exc.status
    headers: dict[str, str] = {}
    message = exc.message
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="faceward"'
    if status == 429:
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, int(retry_after)))
    if status == 503:  # the store is unreachable or full, or analysis is busy: worth retrying shortly
        headers["Retry-After"] = str(max(1, int(getattr(exc, "retry_after", None) or 2)))
    if status >= 500:
        log.error("%s failed: %s (%s)", what, exc.code, exc.message)
        message = getattr(exc, "public_message", None) or (message if status == 503 else INTERNAL_MESSAGE)
    return error_response(status, exc.code, message, headers or None)


async def faceward_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FacewardError)
    return exception_response(exc, f"{request.method} {request.url.path}")


def _field(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body",)] if isinstance(loc, (list, tuple)) else [str(loc)]
    return ".".join(parts) or "body"


def _in_words(error: dict[str, Any]) -> str:
    """Pydantic's message, without the regex a pattern mismatch would quote or the "Value error, " prefix."""
    kind, message = error.get("type"), str(error.get("msg", "invalid"))
    if kind == "string_pattern_mismatch":
        value = error.get("input")
        return (text_problem(value) if isinstance(value, str) else None) or "is not in the accepted form"
    return message.removeprefix("Value error, ")


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [f"{_field(e.get('loc', ()))}: {_in_words(e)}" for e in exc.errors()[:10]]
    return error_response(422, "invalid_request", "; ".join(problems) or "the request is invalid")


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = getattr(exc, "code", None) or status_code_name(exc.status_code)
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and message == "Not Found":
        message = "no such route"
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, message, headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(FacewardError, faceward_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
