"""Text that people read back: names, references, labels, purposes.

One rule for the API's schemas and the use cases (so the CLI and the API accept the same):

* at least one visible character;
* no control characters (C0, DEL, C1) and no lone surrogates;
* no invisible formatting or text-direction characters (Unicode category ``Cf``: U+202E RIGHT-TO-LEFT
  OVERRIDE shows ``Zoë … evil`` as ``… live``; U+200B hides a difference between two names),
  except ZERO WIDTH NON-JOINER and ZERO WIDTH JOINER, which Persian, Indic scripts and emoji need;
* stored in Unicode normalisation form C, so the same name typed on two systems is the same text.

Such characters are refused, not removed: a reference that silently changes would no longer match
the paper record it names.
"""

from __future__ import annotations

import unicodedata

from faceward.errors import InvalidInput
from datetime import datetime, timezone

JOINERS = frozenset({"\u200c", "\u200d"})


# Unicode 15's category Cf less the two joiners (tests/unit/test_text.py checks it against unicodedata).
FORMAT_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891),
    (0x08E2, 0x08E2), (0x180E, 0x180E), (0x200B, 0x200B), (0x200E, 0x200F), (0x202A, 0x202E), (0x2060, 0x2064),
    (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
    (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)
_FORMAT_CLASS = "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in FORMAT_RANGES)
_REFUSED = "\x00-\x1f\x7f-\x9f" + _FORMAT_CLASS
# For schemas: what the OpenAPI document promises is what the service accepts.
TEXT_PATTERN = f"^[^{_REFUSED}]*[^\\s{_REFUSED}][^{_REFUSED}]*$"


def is_format(char: str) -> bool:
    return unicodedata.category(char) == "Cf" and char not in JOINERS


def text_problem(value: str) -> str | None:
    """What is wrong with ``value`` as displayed text, in words; None when nothing is."""
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        return "must be valid Unicode (no lone surrogates)"
    if any(unicodedata.category(c) == "Cc" for c in value):
        return "must not contain control characters"
    bad = next((c for c in value if is_format(c)), None)
    if bad is not None:
        return f"must not contain invisible formatting or text-direction characters (found U+{ord(bad):04X})"
    if not value.strip():
        return "must not be blank"
    return None


def normal(value: str) -> str:
    """``value`` in Unicode normalisation form C."""
    return unicodedata.normalize("NFC", value)


def rfc3339(moment: datetime) -> str:
    """The one way faceward writes a moment for people and clients: RFC 3339 in UTC with ``Z``
    (a naive value is taken as UTC, as the store hands them back)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
    return aware.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


TEXT_MAX = 500


def clean_text(value: str, what: str, *, max_len: int = TEXT_MAX) -> str:
    """``value`` stripped, required, at most ``max_len`` characters, free of control and format characters, in NFC."""
    value = (value or "").strip()
    if not value:
        raise InvalidInput(f"{what} is required")
    if len(value) > max_len:
        raise InvalidInput(f"{what} is longer than {max_len} characters")
    problem = text_problem(value)
    if problem is not None:
        raise InvalidInput(f"{what} {problem}")
    return normal(value)


__all__ = ["TEXT_MAX", "clean_text", "FORMAT_RANGES", "JOINERS", "TEXT_PATTERN", "is_format", "normal", "rfc3339", "text_problem"]
