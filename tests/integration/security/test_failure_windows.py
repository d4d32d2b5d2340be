"""Failed sign-in windows shared by replicas through a real Redis: one first entry and one summary per key id and
window, with every replica's count, whatever the replica count (decisions 014 and 033)."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis

from faceward.security.failure_windows import SharedFailureWindows
from faceward.security.shared_buckets import SharedBuckets
from faceward.security.throttle import FailureDigest
from tests.net import free_port

WINDOW = timedelta(seconds=1)
MASTER = os.urandom(32)


def tenant_key(tenant_id: str) -> bytes:
    return hashlib.sha256(MASTER + tenant_id.encode()).digest()


@pytest.fixture()
def replicas(redis_url: str) -> Iterator[tuple[FailureDigest, FailureDigest]]:
    """Two processes' digests over one Redis (two clients), under a prefix no other test uses."""
    prefix = f"faceward-test:{uuid.uuid4().hex[:12]}"
    shared = (SharedBuckets(redis_url, prefix=prefix), SharedBuckets(redis_url, prefix=prefix))
    yield tuple(FailureDigest(WINDOW, windows=SharedFailureWindows(s, tenant_key)) for s in shared)  # type: ignore[misc]
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()
    for s in shared:
        s.close()


def fail(digest: FailureDigest, n: int, *, key_id: str = "k_guessed", reason: str = "wrong secret") -> bool:
    return digest.note("t_1", key_id, reason=reason, source=f"api:203.0.113.{n % 3}", throttled=n > 5,
                       now=datetime.now(timezone.utc))


def due(*digests: FailureDigest, everything: bool = False) -> list[object]:
    now = datetime.now(timezone.utc)
    return [s for d in digests for s in d.due(now, everything=everything)]


def test_two_replicas_record_one_first_failure_and_one_summary_with_every_count(
    replicas: tuple[FailureDigest, FailureDigest],
) -> None:
    one, two = replicas
    firsts = [fail(digest, n, reason="wrong secret" if n % 4 else "revoked") for n, digest in enumerate([one, two] * 5)]
    assert sum(firsts) == 1 and firsts[0] is True  # one immediate entry for the window, not one per replica
    assert due(one, two) == []  # still open
    time.sleep(WINDOW.total_seconds() + 0.2)
    [summary] = due(one, two)  # not one per replica: 1 + 1 entries a window, as with one process
    assert summary.details["count"] == 9 and summary.details["throttled"] == 4  # type: ignore[attr-defined]
    assert summary.details["reasons"] == {"revoked": 2, "wrong secret": 7}  # type: ignore[attr-defined]
    assert summary.details["sources"] == ["api:203.0.113.0", "api:203.0.113.1", "api:203.0.113.2"]  # type: ignore[attr-defined]
    time.sleep(WINDOW.total_seconds() + 0.2)
    assert due(one, two) == []  # handed out once


def test_redis_holds_no_key_id_no_tenant_and_no_address(replicas: tuple[FailureDigest, FailureDigest],
                                                        redis_url: str) -> None:
    for n, digest in enumerate(replicas * 3):
        fail(digest, n)
    client = redis.Redis.from_url(redis_url)
    try:
        stored = b"".join(k + b"".join(f + v for f, v in client.hgetall(k).items())
                          for k in client.scan_iter("faceward-test:*:failures:*"))
    finally:
        client.close()
    assert stored and b"k_guessed" not in stored and b"t_1" not in stored and b"203.0.113" not in stored


def test_a_failure_after_the_window_hands_the_ended_one_to_its_replica(
    replicas: tuple[FailureDigest, FailureDigest],
) -> None:
    one, two = replicas
    assert fail(one, 0) and not fail(two, 1) and not fail(two, 2)
    time.sleep(WINDOW.total_seconds() + 0.2)
    assert fail(one, 3) is True  # it opens the next window, and is handed the last one
    [ended] = due(one)
    assert ended.details["count"] == 2  # type: ignore[attr-defined]
    assert due(two) == []  # the replica that counted in it finds it recorded (the next window is still open)


def test_the_replica_left_records_what_a_departed_one_counted(replicas: tuple[FailureDigest, FailureDigest]) -> None:
    one, two = replicas
    for n in range(4):
        fail(one, n)  # then this replica stops without a word (a crash): its count is in Redis
    fail(two, 9)
    time.sleep(WINDOW.total_seconds() + 0.2)
    [summary] = due(two)
    assert summary.details["count"] == 4  # type: ignore[attr-defined]


def test_at_shutdown_a_replica_takes_the_windows_it_counted_in(replicas: tuple[FailureDigest, FailureDigest]) -> None:
    one, two = replicas
    for n, digest in enumerate([one, two, two]):
        fail(digest, n)
    [summary] = due(one, everything=True)
    assert summary.details["count"] == 2 and due(two, everything=True) == []  # type: ignore[attr-defined]


def test_an_unreachable_redis_leaves_each_replica_its_own_windows() -> None:
    shared = SharedBuckets(f"redis://127.0.0.1:{free_port()}/0", prefix="faceward-test:down")
    digest = FailureDigest(WINDOW, windows=SharedFailureWindows(shared, tenant_key))
    assert [fail(digest, n) for n in range(3)] == [True, False, False]
    [local] = due(digest, everything=True)
    assert local.details["count"] == 2  # type: ignore[attr-defined]
    shared.close()


def test_two_api_replicas_audit_a_flood_as_two_entries_not_one_per_replica(redis_url: str, tmp_path: Path) -> None:
    from faceward.security.permissions import Role
    from tests.integration.api.apiworld import make_settings, make_tenant, replicas

    url = redis_url.rsplit("/", 1)[0] + "/2"
    settings = make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'fw.db'}", rate_limit_redis=url,
                             auth_failures_per_minute=10)
    with replicas(settings, url) as (apps, apis):
        tenant = make_tenant(apps[0].state.services, "Two Replicas Org")
        good = tenant.tokens[Role.ENROLLER]
        wrong = good[:-43] + ("A" if good[-43] != "A" else "B") + good[-42:]
        codes = [apis[i % 2].get("/v1/subjects", headers={"Authorization": f"Bearer {wrong}"}).status_code
                 for i in range(20)]
        assert codes.count(401) == 10 and codes.count(429) == 10  # the key id's budget is shared too
        for app in apps:  # what each replica does at shutdown
            app.state.services.accounts.flush_failures(everything=True)
        audit = apps[1].state.services.audit
        entries = [e.details for e in audit.entries(tenant.id, action="auth.failure", limit=100)]
        assert [e["count"] for e in entries] == [1, 19] and entries[1]["throttled"] == 10
        assert audit.verify(tenant.id).ok
