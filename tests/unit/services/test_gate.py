"""The one gate every act passes, on in-memory fakes of its Protocols (no store, no engine)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import pytest

from faceward.security.errors import Forbidden, RateLimited
from faceward.security.permissions import Permission, Role
from faceward.security.policy import Operator, Principal, operator_principal
from faceward.services.gate import AuditTrail, Gate, Limits, UsageCounter

NOON = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


@dataclass
class Trail:
    """An :class:`AuditTrail` in memory; ``broken`` makes every append fail, as a full disk would."""

    entries: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    broken: bool = False

    def append(self, tenant_id: str, *, actor: str, action: str, details: dict[str, Any], source: str | None) -> Any:
        if self.broken:
            raise OSError("the audit log cannot be written")
        self.entries.append((tenant_id, actor, action, details))


@dataclass
class Counter:
    """A :class:`UsageCounter` in memory."""

    counts: dict[tuple[str, str, str, date], int] = field(default_factory=dict)

    def record(self, tenant_id: str, key_id: str, kind: str, *, day: date) -> int:
        key = (tenant_id, key_id, kind, day)
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]


def gate(trail: AuditTrail, counter: UsageCounter, **limits: Any) -> Gate:
    return Gate(trail, counter, Limits(**limits), clock=lambda: NOON, monotonic=lambda: 0.0)


def searcher(tenant: str = "t1") -> Principal:
    return Principal(tenant, "k_searcher", Role.SEARCHER)


def test_an_admitted_act_is_counted_and_its_entry_goes_to_the_callers_tenant() -> None:
    trail, counter = Trail(), Counter()
    g = gate(trail, counter)
    g.admit(searcher(), Permission.VERIFY, "verify", "127.0.0.1")
    g.audit(searcher(), "verify", {"decision": "match"}, "127.0.0.1")
    assert counter.counts == {("t1", "k_searcher", "verify", NOON.date()): 1}
    assert trail.entries == [("t1", "key:k_searcher", "verify", {"decision": "match"})]


def test_a_denial_is_audited_with_its_reason_and_nothing_is_counted() -> None:
    trail, counter = Trail(), Counter()
    with pytest.raises(Forbidden):
        gate(trail, counter).admit(searcher(), Permission.KEYS_MANAGE, "key.create", "127.0.0.1")
    [(tenant, actor, action, details)] = trail.entries
    assert (tenant, actor, action) == ("t1", "key:k_searcher", "denied")
    assert details["act"] == "key.create" and details["permission"] == Permission.KEYS_MANAGE.value
    assert details["role"] == "searcher" and details["reason"]
    assert counter.counts == {}


def test_a_denial_stands_when_it_cannot_be_audited() -> None:
    with pytest.raises(Forbidden):
        gate(Trail(broken=True), Counter()).admit(searcher(), Permission.KEYS_MANAGE, "key.create", "127.0.0.1")


def test_the_rate_limit_comes_before_authorization() -> None:
    trail = Trail()
    g = gate(trail, Counter(), requests_per_minute=60, burst=1)
    g.admit(searcher(), Permission.VERIFY, "verify", "x")
    with pytest.raises(RateLimited):  # the second act within the same (frozen) second: no token left
        g.admit(searcher(), Permission.KEYS_MANAGE, "key.create", "x")
    assert trail.entries == []  # refused before it was authorized, so no denial either


def test_a_search_over_the_daily_quota_is_counted_then_refused_until_midnight() -> None:
    counter = Counter()
    g = gate(Trail(), counter, searches_per_day=2)
    for _ in range(2):
        g.admit(searcher(), Permission.SEARCH, "search", "x")
    with pytest.raises(RateLimited) as refused:
        g.admit(searcher(), Permission.SEARCH, "search", "x")
    assert refused.value.retry_after == 12 * 3600
    assert counter.counts[("t1", "k_searcher", "search", NOON.date())] == 3
    g.admit(searcher("t2"), Permission.SEARCH, "search", "x")  # another tenant's key has its own quota


def test_an_operator_entry_names_the_user_and_command() -> None:
    trail = Trail()
    principal = operator_principal("t1", Operator("alice", "search"))
    g = gate(trail, Counter())
    g.admit(principal, Permission.SEARCH, "search", "cli")
    g.audit(principal, "search", {"k": 10}, "cli")
    assert trail.entries == [("t1", "operator", "search", {"k": 10, "operator": {"user": "alice", "command": "search"}})]


def test_an_entry_that_cannot_be_written_fails_the_act() -> None:
    with pytest.raises(OSError):
        gate(Trail(broken=True), Counter()).audit(searcher(), "verify", {}, "x")
