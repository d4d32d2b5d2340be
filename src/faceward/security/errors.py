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
