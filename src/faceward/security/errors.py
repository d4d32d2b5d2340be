from __future__ import annotations

from faceward.errors import FacewardError


class SecurityError(FacewardError):
    code = "security_error"
    status = 403


class MasterKeyError(SecurityError):
    """No master key, a malformed one or a placeholder: the service must not start."""

    code = "master_key"
    status = 500


class SealError(SecurityError):
    """A sealed value failed authentication: wrong key, wrong row, or tampering."""

    code = "seal_error"
    status = 500


class KeyDestroyed(SecurityError):
    """The data key was crypto-shredded; what it sealed is gone for good."""

    code = "key_destroyed"
    status = 404


class Unauthenticated(SecurityError):
    """No API key, or one that is malformed, unknown, revoked, expired or of a suspended tenant.

    Clients get the same plain message for every case; ``reason`` says which, for
    the audit log and the server's own logs only.
    """

    code = "unauthenticated"
    status = 401

    def __init__(self, message: str = "invalid API key", *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class Forbidden(SecurityError):
    """An authenticated principal asked for something its role does not allow."""

    code = "forbidden"
    status = 403

    def __init__(self, message: str = "this API key may not do that", *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class RateLimited(SecurityError):
    """Too many requests or a spent quota; ``retry_after`` is whole seconds until a retry may succeed."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str = "too many requests", *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
