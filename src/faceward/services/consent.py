"""The consent / lawful-basis record every subject must carry before a face is enrolled."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from faceward.errors import InvalidInput


class LawfulBasis(str, enum.Enum):
    """GDPR Art. 9(2) conditions for processing biometric data, as short codes."""

    EXPLICIT_CONSENT = "explicit_consent"
    EMPLOYMENT = "employment"
    VITAL_INTERESTS = "vital_interests"
    LEGAL_CLAIMS = "legal_claims"
    SUBSTANTIAL_PUBLIC_INTEREST = "substantial_public_interest"


class ConsentError(InvalidInput):
    code = "consent_required"


@dataclass(frozen=True, slots=True)
class Consent:
    basis: LawfulBasis
    reference: str
    given_at: datetime
    expires_at: datetime | None = None

    @classmethod
    def build(
        cls, basis: str, reference: str, given_at: datetime | None, expires_at: datetime | None, *, now: datetime
    ) -> Consent:
        """Validate and normalise a consent record; raises :class:`ConsentError` with the reason."""
        try:
            lawful = LawfulBasis(basis)
        except ValueError:
            allowed = ", ".join(b.value for b in LawfulBasis)
            raise ConsentError(f"consent basis {basis!r} is not one of: {allowed}") from None
        reference = (reference or "").strip()
        if not reference:
            raise ConsentError("a consent reference (the record that proves it) is required")
        if len(reference) > 200:
            raise ConsentError("the consent reference is longer than 200 characters")
        given = _aware(given_at or now)
        if given > now + timedelta(minutes=5):
            raise ConsentError("consent cannot be given in the future")
        expires = _aware(expires_at) if expires_at else None
        if expires is not None and expires <= given:
            raise ConsentError("consent must expire after it was given")
        if expires is not None and expires <= now:
            raise ConsentError("this consent has already expired")
        return cls(lawful, reference, given, expires)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
