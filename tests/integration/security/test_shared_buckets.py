"""Rate buckets shared by replicas through a real Redis: one rate per key, however many processes serve it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from faceward.security.shared_buckets import SharedBuckets
from faceward.security.throttle import FailureThrottle
from tests.net import free_port


@pytest.fixture()
def replicas(redis_url: str) -> Iterator[tuple[SharedBuckets, SharedBuckets]]:
    """Two processes' views of one Redis (two clients), under a prefix no other test uses."""
    prefix = f"faceward-test:{uuid.uuid4().hex[:12]}"
    pair = (SharedBuckets(redis_url, prefix=prefix), SharedBuckets(redis_url, prefix=prefix))
    yield pair
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()
    for shared in pair:
        shared.close()


def test_two_replicas_grant_one_burst_between_them(replicas: tuple[SharedBuckets, SharedBuckets]) -> None:
    a, b = (shared("key-rate", 60.0, 5) for shared in replicas)
    granted = [bucket.take("k_one") == 0.0 for _ in range(5) for bucket in (a, b)]
    assert sum(granted) == 5  # not 10: the burst is the key's, not each replica's
    assert 0.0 < a.take("k_one") <= 1.0 and b.peek("k_one") > 0.0  # 60/min: a token a second
    assert a.take("k_other") == 0.0  # another key has its own bucket


def test_peeking_takes_nothing(replicas: tuple[SharedBuckets, SharedBuckets]) -> None:
    bucket = replicas[0]("key-rate", 60.0, 2)
    assert [bucket.peek("k") for _ in range(10)] == [0.0] * 10
    assert [bucket.take("k") for _ in range(2)] == [0.0, 0.0]
    assert bucket.peek("k") > 0.0


def test_tokens_come_back_at_the_rate_and_full_buckets_expire(
    replicas: tuple[SharedBuckets, SharedBuckets], redis_url: str
) -> None:
    bucket = replicas[0]("key-rate", 600.0, 1)  # 10 tokens a second
    assert bucket.take("k") == 0.0
    wait = replicas[1]("key-rate", 600.0, 1).take("k")
    assert 0.0 < wait <= 0.1
    time.sleep(wait + 0.05)
    assert bucket.take("k") == 0.0
    client = redis.Redis.from_url(redis_url)
    [name] = list(client.scan_iter(f"{replicas[0].prefix}:*"))
    assert b"k" not in name.split(b":")[-1] and 0 < client.pttl(name) <= 1_200  # hashed; gone once full again
    client.close()


def test_failed_sign_ins_are_throttled_across_replicas(replicas: tuple[SharedBuckets, SharedBuckets]) -> None:
    one, two = (FailureThrottle(10.0, buckets=shared) for shared in replicas)
    waits = [throttle.failed("k_guessed", "203.0.113.9") for _ in range(6) for throttle in (one, two)]
    assert waits[:10] == [0.0] * 10 and all(w > 0 for w in waits[10:])  # 10 a minute for the key id, in all


def test_an_unreachable_redis_leaves_each_process_its_own_limits() -> None:
    shared = SharedBuckets(f"redis://127.0.0.1:{free_port()}/0", prefix="faceward-test:down")
    bucket = shared("key-rate", 60.0, 3)
    started = time.monotonic()
    waits = [bucket.take("k") for _ in range(5)]
    assert waits[:3] == [0.0] * 3 and waits[3] > 0 and waits[4] > 0  # the local fallback's burst of 3
    assert time.monotonic() - started < 2.0  # one failed connect, then the local buckets until the retry
    assert bucket.peek("other") == 0.0
    shared.close()


def test_the_api_limits_a_key_across_two_replicas(redis_url: str, tmp_path: Path) -> None:
    from faceward.security.permissions import Role
    from faceward.services.operations import Limits
    from tests.integration.api.apiworld import make_settings, make_tenant, replicas

    url = redis_url.replace("/0", "/1")
    settings = make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'fw.db'}", rate_limit_redis=url)
    # One token a minute: none comes back while the eight requests run, however slow the host (at 60 a
    # minute, a second's stall under load let a fifth request through).
    limits = Limits(requests_per_minute=1.0, burst=4, searches_per_day=1000)
    with replicas(settings, url, limits=limits) as (apps, apis):
        tenant = make_tenant(apps[0].state.services, "Two Replicas Org")
        codes = [apis[i % 2].get("/v1/subjects", headers=tenant.auth(Role.ENROLLER)).status_code for i in range(8)]
        assert codes.count(200) == 4 and codes[-1] == 429  # 4 in all, not 4 per replica


def test_a_malformed_redis_url_is_refused_in_one_line() -> None:
    from faceward.errors import ConfigError

    with pytest.raises(ConfigError, match="FACEWARD_RATE_LIMIT_REDIS is not a Redis URL"):
        SharedBuckets("redis://127.0.0.1:notaport/0")
