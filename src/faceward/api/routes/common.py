"""What the route modules share: documented error responses, view-to-schema translation."""

from __future__ import annotations

from typing import Any

from faceward.api.schemas import ErrorOut, KeyOut, SubjectOut

_ERRORS = {
    400: "Malformed request (e.g. an unparseable body).",
    401: "No API key, or one that is unknown, revoked or expired.",
    403: "The key's role does not allow this.",
    404: "No such resource in this tenant (an id of another tenant gives the same answer).",
    413: "The body or an image is too large.",
    415: "The upload is not a JPEG, PNG or WebP image.",
    422: "Invalid input: a field, a consent record, an image without a usable face.",
    429: "Rate limit or daily quota reached; see Retry-After.",
    500: "Internal error (details only in the server log).",
    503: "The database is unavailable; retry later.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses (all share :class:`ErrorOut`)."""
    chosen = statuses or tuple(_ERRORS)
    return {s: {"model": ErrorOut, "description": _ERRORS[s]} for s in chosen}


AUTHED = (400, 401, 403, 404, 413, 422, 429, 500, 503)
UPLOAD = AUTHED + (415,)


def key_out(view: Any) -> KeyOut:
    return KeyOut(
        id=view.id, role=view.role, label=view.label, created_at=view.created_at, expires_at=view.expires_at,
        revoked_at=view.revoked_at, last_used_at=view.last_used_at,
    )


def subject_out(view: Any) -> SubjectOut:
    return SubjectOut.model_validate(
        {
            "id": view.id,
            "display_name": view.display_name,
            "consent": {
                "basis": view.consent_basis, "reference": view.consent_reference,
                "given_at": view.consent_given_at, "expires_at": view.consent_expires_at,
            },
            "created_at": view.created_at,
            "faces": view.faces,
        }
    )
