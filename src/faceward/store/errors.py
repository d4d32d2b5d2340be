from __future__ import annotations

from faceward.errors import Conflict, FacewardError, NotFound


class StoreError(FacewardError):
    code = "store_error"
    status = 500


class StoreUnavailable(StoreError):
    """The database cannot be reached or is full; the client may retry."""

    code = "store_unavailable"
    status = 503


__all__ = ["Conflict", "NotFound", "StoreError", "StoreUnavailable"]
