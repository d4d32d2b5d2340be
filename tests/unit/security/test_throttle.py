"""Failed authentications: the throttle's budgets and the digest's windows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from faceward.security.throttle import FailureDigest, FailureThrottle

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
