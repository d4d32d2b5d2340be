"""Per-key usage counters (searches, verifications, enrollments), sealed so a stolen database cannot count them.

A counter row is keyed by ``bucket = HMAC(usage key, key_id "|" kind)`` and the
day; the owner (key id and kind) is sealed beside it and the count itself is
sealed, all under the tenant's data key (the usage key is derived from it). A
reader of the database sees that some counter of some tenant moved on some day,
not whose, of what kind, or by how much.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from collections.abc import Callable
from datetime import date
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from faceward.errors import InvalidInput
from faceward.security.apikeys import open_role
from faceward.security.crypto import aad, open_sealed, seal
from faceward.security.permissions import Role
from faceward.store import SqlStore
from faceward.store.accounts import AccountStore

MAX_KIND = 32


def usage_key(tenant_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"faceward/usage-bucket/v1").derive(tenant_key)


class UsageService:
    """Count what each API key does, per day; report a tenant's own usage."""

    def __init__(self, store: SqlStore, keys: Callable[[str], bytes]) -> None:
        self.store = store
        self._keys = keys
        self._repo = AccountStore(store)

    def _bucket(self, tenant_key: bytes, key_id: str, kind: str) -> str:
        return hmac.new(usage_key(tenant_key), f"{key_id}|{kind}".encode(), hashlib.sha256).hexdigest()

    def record(self, tenant_id: str, key_id: str, kind: str, *, day: date) -> int:
        """Add one to (key, kind, day) and return the new count: compare it with a daily quota."""
        if not kind or len(kind) > MAX_KIND or "|" in kind:
            raise InvalidInput(f"a usage kind of 1 to {MAX_KIND} characters without '|' is required")
        tenant_key = self._keys(tenant_id)
        bucket = self._bucket(tenant_key, key_id, kind)
        count_aad = aad(tenant_id, "usage", bucket, day.isoformat(), "count")

        def step(sealed: bytes) -> tuple[int, bytes]:
            (count,) = struct.unpack(">Q", open_sealed(tenant_key, sealed, count_aad))
            return count + 1, seal(tenant_key, struct.pack(">Q", count + 1), count_aad)

        return self._repo.bump_usage(
            tenant_id, bucket, day,
            owner_sealed=seal(tenant_key, json.dumps([key_id, kind]).encode(), aad(tenant_id, "usage", bucket, "owner")),
            zero_sealed=seal(tenant_key, struct.pack(">Q", 0), count_aad),
            step=step,
        )

    def counts(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every counter of the tenant, opened: ``{"key_id", "kind", "day", "count"}`` by day."""
        tenant_key = self._keys(tenant_id)
        out = []
        for row in self._repo.usage_rows(tenant_id):
            key_id, kind = json.loads(open_sealed(tenant_key, row.owner_sealed, aad(tenant_id, "usage", row.bucket, "owner")))
            count_aad = aad(tenant_id, "usage", row.bucket, row.day.isoformat(), "count")
            (count,) = struct.unpack(">Q", open_sealed(tenant_key, row.count_sealed, count_aad))
            out.append({"key_id": key_id, "kind": kind, "day": row.day.isoformat(), "count": count})
        return sorted(out, key=lambda r: (r["day"], r["key_id"], r["kind"]))

    def summary(self, tenant_id: str) -> dict[str, Any]:
        """This tenant's own figures: keys by role (live ones), subjects, faces, and counts per key per day."""
        tenant_key = self._keys(tenant_id)
        roles = {role.value: 0 for role in Role}
        for key in self._repo.list_keys(tenant_id):
            if key.revoked_at is None:
                roles[open_role(tenant_key, key).value] += 1
        counts = self.counts(tenant_id)
        searches: dict[str, dict[str, int]] = {}
        for row in counts:
            if row["kind"] == "search":
                searches.setdefault(row["key_id"], {})[row["day"]] = row["count"]
        return {
            "tenant_id": tenant_id,
            "keys": roles,
            "subjects": self.store.count_subjects(tenant_id),
            "faces": self.store.count_faces(tenant_id),
            "searches": searches,
            "usage": counts,
        }


__all__ = ["UsageService", "usage_key"]
