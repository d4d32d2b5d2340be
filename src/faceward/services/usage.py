"""Per-key usage counters (searches, verifications, enrollments), sealed so a stolen database cannot count them.

A counter row is keyed by ``bucket = HMAC(usage key, key_id "|" kind)`` and the
day; the owner (key id and kind) is sealed beside it and the count itself is
sealed, all under the tenant's data key (the usage key is derived from it). A
reader of the database sees that some counter of some tenant moved on some day,
not whose, of what kind, or by how much.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from faceward.errors import InvalidInput
from faceward.security.permissions import Role
from faceward.security.vault import TenantVault
from faceward.store import SqlStore
from faceward.store.accounts import AccountStore

MAX_KIND = 32


class UsageService:
    """Count what each API key does, per day; report a tenant's own usage."""

    def __init__(self, store: SqlStore, vault: TenantVault) -> None:
        self.store = store
        self.vault = vault
        self._repo = AccountStore(store)

    def record(self, tenant_id: str, key_id: str, kind: str, *, day: date) -> int:
        """Add one to (key, kind, day) and return the new count: compare it with a daily quota."""
        if not kind or len(kind) > MAX_KIND or "|" in kind:
            raise InvalidInput(f"a usage kind of 1 to {MAX_KIND} characters without '|' is required")
        bucket = self.vault.usage_bucket(tenant_id, key_id, kind)

        def step(sealed: bytes) -> tuple[int, bytes]:
            count = self.vault.open_usage_count(tenant_id, bucket, day, sealed) + 1
            return count, self.vault.seal_usage_count(tenant_id, bucket, day, count)

        return self._repo.bump_usage(
            tenant_id, bucket, day,
            owner_sealed=self.vault.seal_usage_owner(tenant_id, bucket, key_id, kind),
            zero_sealed=self.vault.seal_usage_count(tenant_id, bucket, day, 0),
            step=step,
        )

    def counts(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every counter of the tenant, opened: ``{"key_id", "kind", "day", "count"}`` by day."""
        out = []
        for row in self._repo.usage_rows(tenant_id):
            key_id, kind = self.vault.open_usage_owner(tenant_id, row.bucket, row.owner_sealed)
            count = self.vault.open_usage_count(tenant_id, row.bucket, row.day, row.count_sealed)
            out.append({"key_id": key_id, "kind": kind, "day": row.day.isoformat(), "count": count})
        return sorted(out, key=lambda r: (r["day"], r["key_id"], r["kind"]))

    def summary(self, tenant_id: str) -> dict[str, Any]:
        """This tenant's own figures: keys by role (live ones), subjects, faces, and counts per key per day."""
        roles = {role.value: 0 for role in Role}
        for key in self._repo.list_keys(tenant_id):
            if key.revoked_at is None:
                roles[self.vault.open_key_role(key).value] += 1
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


__all__ = ["UsageService"]
