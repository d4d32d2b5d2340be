"""The root of faceward's exception hierarchy.

Every error raised below ``api/`` derives from :class:`FacewardError` and
carries a stable machine ``code`` and the HTTP ``status`` it maps to, so the
API and the CLI report it the same way (datasette's habit)::

    FacewardError
    ├── ConfigError                      (settings; 500-class, never reaches a client)
    ├── vision.errors.VisionError        (422 / 413: a bad image or no usable face)
    ├── store.errors.StoreError          (404 not found, 409 conflict, 503 unavailable)
    ├── security.errors.SecurityError    (401 / 403 / 429)
    └── service.ServiceError             (422: consent, model mismatch, quota ...)
"""

from __future__ import annotations


class FacewardError(Exception):
    """Base class: a message a person can act on, a code a program can match."""

    code: str = "error"
    status: int = 400

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class ConfigError(FacewardError):
    """Settings are missing or invalid; raised at start-up, before serving."""

    code = "config_error"
    status = 500


class NotFound(FacewardError):
    """An id that does not exist, or that belongs to another tenant: the same error for both."""

    code = "not_found"
    status = 404


class Conflict(FacewardError):
    code = "conflict"
    status = 409


class InvalidInput(FacewardError):
    code = "invalid_input"
    status = 422
