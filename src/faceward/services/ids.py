"""Identifiers and the moment the use cases stamp their records with."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone


def new_id(prefix: str) -> str:
    """Random, unguessable, non-sequential ids (128 bits)."""
    return prefix + secrets.token_hex(14)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (SQLite hands back naive ones)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


__all__ = ["aware", "new_id", "utcnow"]
