"""Identifiers and the moment the use cases stamp their records with."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone

from faceward.errors import NotFound

SUBJECT_ID = re.compile(r"s_[0-9a-f]{28}")
FACE_ID = re.compile(r"f_[0-9a-f]{28}")
SEARCH_ID = re.compile(r"q_[0-9a-f]{28}")


def new_id(prefix: str) -> str:
    """Random, unguessable, non-sequential ids (128 bits)."""
    return prefix + secrets.token_hex(14)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (SQLite hands back naive ones)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def well_formed(pattern: re.Pattern[str], value: object, what: str) -> str:
    """``value`` if it has the form of ``pattern``'s ids; otherwise the 404 an unknown id gets
    (malformed ids are unknown ids: the same answer, and nothing odd reaches the database)."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise NotFound(f"no such {what}")
    return value


__all__ = ["FACE_ID", "SEARCH_ID", "SUBJECT_ID", "aware", "new_id", "utcnow", "well_formed"]
