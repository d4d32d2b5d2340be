"""Failed authentications: the throttle's budgets and the digest's windows."""

from __future__ import annotations

import threading
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


def test_a_slow_shared_claim_holds_up_no_other_key_ids_failure() -> None:
    # Replicas share windows through Redis; while one claim waits on a slow Redis, failures of other
    # key ids are still counted (the claim is asked outside the digest's lock).
    counted: list[bool] = []

    def claim(key: str, _window_s: float) -> bool:
        if key == "t1:slow":
            other = threading.Thread(target=lambda: counted.append(
                digest.note("t1", "fast", reason="wrong secret", source=None, throttled=False, now=T0)))
            other.start()
            other.join(timeout=2)
            return False  # another replica recorded this window's first failure
        return True

    digest = FailureDigest(timedelta(minutes=1), claim=claim)
    assert digest.note("t1", "slow", reason="wrong secret", source=None, throttled=False, now=T0) is False
    assert counted == [True]  # the other key id's first failure went through while the claim waited
    summaries = {s.key_id: s.details["count"] for s in digest.due(T0 + timedelta(minutes=2))}
    assert summaries == {"slow": 1}  # the claimed-elsewhere failure is counted here; "fast" was recorded at once
