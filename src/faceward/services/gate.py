"""The one gate every act passes, in this order: rate limit, authorize (a denial is audited),
quota (searches), usage count; then, after the act, its audit entry.

:class:`~faceward.services.operations.Operations` and the console's
:class:`~faceward.services.console.ConsoleActs` hold the same :class:`Gate` and call it; no act decides access itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Protocol

from faceward.security.errors import Forbidden, RateLimited
from faceward.security.permissions import Permission
from faceward.security.policy import Principal, authorize
from faceward.security.ratelimit import Bucket, TokenBucket, key_rate_limited, retry_after_seconds


class AuditTrail(Protocol):
    """Where an act's entry goes (:class:`~faceward.security.audit.AuditLog`); raises if it cannot be written."""

    def append(self, tenant_id: str, *, actor: str, action: str, details: dict[str, Any], source: str | None) -> Any: ...


class UsageCounter(Protocol):
    """Counts acts per key, kind and day (:class:`~faceward.services.usage.UsageService`); returns the new count."""

    def record(self, tenant_id: str, key_id: str, kind: str, *, day: date) -> int: ...

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Per-key limits. Defaults suit one investigator's interactive use, not bulk scraping."""

    requests_per_minute: float = 300.0
    burst: int = 60
    searches_per_day: int = 2000


class Gate:
    """Admits acts for principals and writes their audit entries."""

    def __init__(
        self, audit: AuditTrail, usage: UsageCounter, limits: Limits, *, clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic, buckets: Callable[[str, float, int], Bucket] | None = None,
    ) -> None:
        """``buckets`` makes the per-key rate bucket shared between replicas (decision 033); else this process's own."""
        self._log, self.usage, self.limits, self.clock = audit, usage, limits, clock
        self.bucket: Bucket = (
            buckets("key-rate", limits.requests_per_minute, limits.burst) if buckets
            else TokenBucket(limits.requests_per_minute, limits.burst, clock=monotonic)
        )

    def admit(self, principal: Principal, permission: Permission, act: str, source: str) -> None:
        self.check(principal, permission, act, source)
        if act == "search":
            self.quota(principal)
        else:
            self.count(principal, act)

    def check(self, principal: Principal, permission: Permission, act: str, source: str) -> None:
        """Rate limit and authorize: the steps that need no store."""
        wait = self.bucket.take(principal.key_id)
        if wait > 0:
            raise key_rate_limited(wait)
        try:
            authorize(principal, permission)
        except Forbidden as exc:
            self._record_denial(principal, act, permission, exc, source)
            raise

    def quota(self, principal: Principal) -> None:
        """Count a search and refuse it past the key's daily quota."""
        self._check_search_quota(principal)

    def _record_denial(self, principal: Principal, act: str, permission: Permission, exc: Forbidden, source: str) -> None:
        details = {"act": act, "permission": permission.value, "role": principal.role.value, "reason": exc.reason}
        try:
            self.audit(principal, "denied", details, source)
        except Exception:  # the denial stands whether or not it could be recorded
            log.exception("could not audit a denied %s by key %s", act, principal.key_id)

    def count(self, principal: Principal, kind: str) -> int:
        return self.usage.record(principal.tenant_id, principal.key_id, kind, day=self.clock().date())

    def _check_search_quota(self, principal: Principal) -> None:
        count = self.count(principal, "search")
        if count > self.limits.searches_per_day:
            now = self.clock().astimezone(timezone.utc)
            midnight = datetime(now.year, now.month, now.day, tzinfo=timezone.utc) + timedelta(days=1)
            raise RateLimited(
                f"this key's daily search quota ({self.limits.searches_per_day}) is used up",
                retry_after=retry_after_seconds((midnight - now).total_seconds()),
            )

    def audit(self, principal: Principal, action: str, details: dict[str, Any], source: str) -> None:
        if principal.operator is not None:  # who at the host's shell, and which command (never its arguments)
            details = {**details, "operator": {"user": principal.operator.user, "command": principal.operator.command}}
        self._log.append(principal.tenant_id, actor=principal.actor, action=action, details=details, source=source)


__all__ = ["AuditTrail", "Gate", "Limits", "UsageCounter"]
