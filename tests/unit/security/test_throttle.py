"""Failed authentications: the throttle's budgets and the digest's windows."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

from faceward.security.throttle import FailureDigest, FailureSummary, FailureThrottle, Noted, Taken, summary

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)


def test_the_throttle_counts_failures_per_key_id_and_per_address() -> None:
    now = [0.0]
    throttle = FailureThrottle(per_minute=2, clock=lambda: now[0])
    assert [throttle.failed("k1", "10.0.0.1") for _ in range(3)][:2] == [0.0, 0.0]
    assert throttle.failed("k1", "10.0.0.2") > 0  # k1 is spent, whatever the address
    assert [throttle.failed(f"other{i}", "10.0.0.1") for i in range(4)].count(0.0) == 3  # the address had 6
    now[0] += 60
    assert throttle.failed("k1", "10.0.0.3") == 0.0  # refilled


def test_the_digest_records_the_first_failure_at_once_and_the_rest_as_one_count() -> None:
    digest = FailureDigest(timedelta(minutes=1))
    firsts = [digest.note("t1", "k1", reason="wrong secret", source=f"api:10.0.0.{i % 3}", throttled=i > 5,
                          now=T0 + timedelta(seconds=i / 10)) for i in range(100)]
    assert firsts == [True] + [False] * 99
    assert digest.due(T0 + timedelta(seconds=30)) == []  # the window is still open
    [summary] = digest.due(T0 + timedelta(seconds=61))
    assert summary.key_id == "k1" and summary.details["count"] == 99 and summary.details["throttled"] == 94
    assert summary.details["sources"] == ["api:10.0.0.0", "api:10.0.0.1", "api:10.0.0.2"]
    assert digest.due(T0 + timedelta(seconds=200)) == []  # handed out once


def test_a_failure_after_the_window_opens_the_next_and_closes_the_last() -> None:
    digest = FailureDigest(timedelta(minutes=1))
    assert digest.note("t1", "k1", reason="revoked", source=None, throttled=False, now=T0)
    assert not digest.note("t1", "k1", reason="revoked", source=None, throttled=False, now=T0 + timedelta(seconds=1))
    assert digest.note("t1", "k1", reason="expired", source=None, throttled=False, now=T0 + timedelta(seconds=90))
    [closed] = digest.due(T0 + timedelta(seconds=91))
    assert closed.details["count"] == 1 and closed.details["reasons"] == {"revoked": 1}
    assert digest.due(T0 + timedelta(seconds=91), everything=True) == []  # the new window holds no count yet


def test_the_digest_never_holds_more_than_its_bound() -> None:
    digest = FailureDigest(max_open=10)
    firsts = [digest.note("t1", f"k{i}", reason="x", source=None, throttled=False, now=T0) for i in range(50)]
    assert all(firsts) and len(digest._open) == 10  # the rest were recorded singly


class MemoryWindows:
    """Windows two digests share, kept here as Redis keeps them (the same rules as its scripts), on a clock of our own."""

    def __init__(self) -> None:
        self.now = 0.0
        self.held: dict[tuple[str, str], dict[str, Any]] = {}

    def _summary(self, tenant_id: str, key_id: str, w: dict[str, Any] | None, window_s: float) -> FailureSummary | None:
        if not w or not w["count"]:
            return None
        return summary(tenant_id, key_id, count=w["count"], throttled=w["throttled"], reasons=dict(w["reasons"]),
                       sources=sorted(w["sources"]), more_sources=0, since=T0, window_s=window_s)

    def note(self, tenant_id: str, key_id: str, *, window_s: float, reason: str, source: str | None,
             throttled: bool) -> Noted | None:
        w = self.held.get((tenant_id, key_id))
        ended = None
        if w is not None and self.now >= w["opened"] + window_s:
            ended, w = self.held.pop((tenant_id, key_id)), None
        if w is None:
            self.held[(tenant_id, key_id)] = {"opened": self.now, "count": 0, "throttled": 0, "reasons": Counter(),
                                              "sources": set()}
            return Noted(True, window_s, self._summary(tenant_id, key_id, ended, window_s))
        w["count"] += 1
        w["throttled"] += throttled
        w["reasons"][reason] += 1
        w["sources"] |= {source} if source else set()
        return Noted(False, w["opened"] + window_s - self.now, self._summary(tenant_id, key_id, ended, window_s))

    def take(self, tenant_id: str, key_id: str, *, window_s: float, force: bool) -> Taken | None:
        w = self.held.get((tenant_id, key_id))
        if w is None:
            return Taken()
        if not force and self.now < w["opened"] + window_s:
            return Taken(open_for_s=w["opened"] + window_s - self.now)
        return Taken(self._summary(tenant_id, key_id, self.held.pop((tenant_id, key_id)), window_s))


def test_two_replicas_sharing_windows_record_the_first_failure_once_and_one_summary() -> None:
    shared = MemoryWindows()
    one, two = FailureDigest(timedelta(minutes=1), windows=shared), FailureDigest(timedelta(minutes=1), windows=shared)
    firsts = [replica.note("t1", "k1", reason="wrong secret", source=f"api:10.0.0.{i % 2}", throttled=False, now=T0)
              for i, replica in enumerate([one, two] * 5)]
    assert firsts == [True] + [False] * 9
    assert one.due(T0 + timedelta(seconds=30)) == [] and two.due(T0 + timedelta(seconds=30)) == []  # still open
    shared.now = 61
    summaries = one.due(T0 + timedelta(seconds=61)) + two.due(T0 + timedelta(seconds=61))
    assert [(s.key_id, s.details["count"], s.details["sources"]) for s in summaries] == [
        ("k1", 9, ["api:10.0.0.0", "api:10.0.0.1"])]  # one summary, with both replicas' counts (not 1 + 2)


def test_a_shared_window_found_over_is_recorded_by_the_replica_that_found_it() -> None:
    shared = MemoryWindows()
    one, two = FailureDigest(timedelta(minutes=1), windows=shared), FailureDigest(timedelta(minutes=1), windows=shared)
    assert one.note("t1", "k1", reason="revoked", source=None, throttled=False, now=T0)
    assert not one.note("t1", "k1", reason="revoked", source=None, throttled=False, now=T0)
    shared.now = 90  # the replica that counted it is gone; another replica's failure finds the window over
    assert two.note("t1", "k1", reason="expired", source=None, throttled=False, now=T0 + timedelta(seconds=90))
    [ended] = two.due(T0 + timedelta(seconds=90))
    assert ended.details["count"] == 1 and ended.details["reasons"] == {"revoked": 1}
    assert one.due(T0 + timedelta(seconds=90)) == []  # the new window is open: nothing for the old replica
    shared.now = 200
    assert one.due(T0 + timedelta(seconds=200)) + two.due(T0 + timedelta(seconds=200)) == []  # nothing after its first


def test_at_shutdown_a_replica_takes_the_shared_windows_it_counted_in() -> None:
    shared = MemoryWindows()
    one, two = FailureDigest(timedelta(minutes=1), windows=shared), FailureDigest(timedelta(minutes=1), windows=shared)
    for replica in (one, two, two):
        replica.note("t1", "k1", reason="wrong secret", source=None, throttled=False, now=T0)
    [taken] = one.due(T0, everything=True)
    assert taken.details["count"] == 2 and two.due(T0, everything=True) == []  # no count lost, none recorded twice


class AwayWindows:
    """Shared windows that are unreachable (Redis down)."""

    def note(self, tenant_id: str, key_id: str, **_: object) -> Noted | None:
        return None

    def take(self, tenant_id: str, key_id: str, **_: object) -> Taken | None:
        return None


def test_while_the_shared_windows_are_away_each_replica_counts_on_its_own() -> None:
    digest = FailureDigest(timedelta(minutes=1), windows=AwayWindows())
    firsts = [digest.note("t1", "k1", reason="x", source=None, throttled=False, now=T0) for _ in range(3)]
    assert firsts == [True, False, False]
    [local] = digest.due(T0 + timedelta(minutes=2))
    assert local.details["count"] == 2


def test_a_slow_shared_window_holds_up_no_other_key_ids_failure() -> None:
    # Replicas share windows through Redis; while one call waits on a slow Redis, failures of other
    # key ids are still counted (the shared store is asked outside the digest's lock).
    counted: list[bool] = []

    class SlowWindows(AwayWindows):
        def note(self, tenant_id: str, key_id: str, **_: object) -> Noted | None:
            if key_id == "slow":
                other = threading.Thread(target=lambda: counted.append(
                    digest.note("t1", "fast", reason="wrong secret", source=None, throttled=False, now=T0)))
                other.start()
                other.join(timeout=2)
                return Noted(False, 60.0)  # another replica recorded this window's first failure
            return None

    digest = FailureDigest(timedelta(minutes=1), windows=SlowWindows())
    assert digest.note("t1", "slow", reason="wrong secret", source=None, throttled=False, now=T0) is False
    assert counted == [True]  # the other key id's first failure went through while the slow call waited
