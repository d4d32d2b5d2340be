"""The in-process token bucket behind the per-key rate limit."""

from __future__ import annotations

import threading

import pytest

from faceward.security.ratelimit import TokenBucket, retry_after_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(per_minute=30, burst=3, clock=clock)  # one token every 2 s
    assert [bucket.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("k") == pytest.approx(2.0)
    clock.now = 1.0
    assert bucket.take("k") == pytest.approx(1.0)
    clock.now = 2.0
    assert bucket.take("k") == 0.0
    clock.now = 1000.0  # refills to the burst, no further
    assert [bucket.take("k") for _ in range(4)][-1] > 0


def test_keys_are_independent() -> None:
    bucket = TokenBucket(per_minute=1, burst=1, clock=Clock())
    assert bucket.take("a") == 0.0 and bucket.take("a") > 0
    assert bucket.take("b") == 0.0


def test_memory_is_bounded() -> None:
    clock = Clock()
    bucket = TokenBucket(per_minute=60, burst=1, clock=clock, max_keys=10)
    for i in range(100):
        bucket.take(f"k{i}")
    assert len(bucket._buckets) <= 10


def test_thread_safe_grants_exactly_the_burst() -> None:
    bucket = TokenBucket(per_minute=0.001, burst=50)
    granted = []

    def worker() -> None:
        for _ in range(20):
            granted.append(bucket.take("k") == 0.0)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 50


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after_seconds(0.01) == 1 and retry_after_seconds(1.2) == 2 and retry_after_seconds(60) == 60


def test_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        TokenBucket(per_minute=0, burst=1)
    with pytest.raises(ValueError):
        TokenBucket(per_minute=1, burst=0)


def test_peek_reports_the_wait_and_spends_nothing() -> None:
    clock = Clock()
    bucket = TokenBucket(per_minute=30, burst=2, clock=clock)
    assert bucket.peek("unknown") == 0.0
    for _ in range(100):  # peeking, however often, leaves the tokens where they were
        assert bucket.peek("k") == 0.0
    assert [bucket.take("k") for _ in range(2)] == [0.0, 0.0]
    assert bucket.peek("k") == pytest.approx(2.0)
    clock.now = 1.5
    assert bucket.peek("k") == pytest.approx(0.5)
    clock.now = 2.0
    assert bucket.peek("k") == 0.0 and bucket.take("k") == 0.0
