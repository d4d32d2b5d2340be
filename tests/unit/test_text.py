"""The rule for displayed text: visible, no control, formatting or direction characters, NFC."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest

from faceward.text import FORMAT_RANGES, JOINERS, TEXT_PATTERN, normal, text_problem


def test_the_format_ranges_are_unicode_category_cf_less_the_joiners() -> None:
    listed = {c for a, b in FORMAT_RANGES for c in range(a, b + 1)}
    expected = {c for c in range(sys.maxunicode + 1)
                if unicodedata.category(chr(c)) == "Cf" and chr(c) not in JOINERS}
    assert listed >= expected  # a newer Unicode may add some; none may go missing


@pytest.mark.parametrize("value, problem", [
    ("Zoë Evil", None), ("می\u200cخواهم", None), ("👩\u200d💻", None), ("  x  ", None),
    ("Zoë \u202elive", "must not contain invisible formatting or text-direction characters (found U+202E)"),
    ("a\u200bb", "must not contain invisible formatting or text-direction characters (found U+200B)"),
    ("\u2066x\u2069", "must not contain invisible formatting or text-direction characters (found U+2066)"),
    ("line\nbreak", "must not contain control characters"), ("bell\x07", "must not contain control characters"),
    ("c1\x85", "must not contain control characters"), ("   ", "must not be blank"),
    ("\ud800", "must be valid Unicode (no lone surrogates)"),
])
def test_problems_are_said_in_words_and_match_the_schema_pattern(value: str, problem: str | None) -> None:
    assert text_problem(value) == problem
    if "\ud800" not in value:
        assert (re.fullmatch(TEXT_PATTERN, value) is not None) == (problem is None)


def test_text_is_kept_in_normal_form_c() -> None:
    assert normal("Zoe\u0308") == "Zoë" and len(normal("Zoe\u0308")) == 3


def test_moments_are_written_in_rfc3339_utc_with_z() -> None:
    from datetime import datetime, timedelta, timezone

    from faceward.text import rfc3339

    assert rfc3339(datetime(2026, 12, 1, 5, 30, tzinfo=timezone.utc)) == "2026-12-01T05:30:00Z"
    assert rfc3339(datetime(2026, 12, 1, 6, 30, tzinfo=timezone(timedelta(hours=1)))) == "2026-12-01T05:30:00Z"
    assert rfc3339(datetime(2026, 12, 1, 5, 30)) == "2026-12-01T05:30:00Z"  # naive: the store's UTC
