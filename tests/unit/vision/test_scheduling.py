"""Fair analysis scheduling: a queue per tenant, served in turn, with caps."""

from __future__ import annotations

import threading
import time

import pytest

from faceward.vision.scheduling import AnalysisBusy, FairScheduler


def hold(scheduler: FairScheduler, tenant: str, order: list[str], release: threading.Event) -> threading.Thread:
    def run() -> None:
        try:
            with scheduler.slot(tenant):
                order.append(tenant)
                release.wait(5)
        except AnalysisBusy:
            order.append(f"{tenant}:busy")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)


def test_one_tenant_cannot_take_every_slot() -> None:
    scheduler = FairScheduler(2, per_tenant=1, queue_per_tenant=4)
    order: list[str] = []
    go = threading.Event()
    threads = [hold(scheduler, "a", order, go) for _ in range(3)]
    wait_for(lambda: scheduler.running("a") == 1 and scheduler.waiting("a") == 2)
    # tenant b finds the second slot free at once, whatever a has queued
    with scheduler.slot("b"):
        assert scheduler.running("b") == 1
    go.set()
    for thread in threads:
        thread.join(5)
    assert order == ["a", "a", "a"] and scheduler.free == 2


def test_tenants_take_turns() -> None:
    scheduler = FairScheduler(1, per_tenant=1, queue_per_tenant=8)
    order: list[str] = []
    gates = [threading.Event() for _ in range(7)]
    first = hold(scheduler, "a", order, gates[0])
    wait_for(lambda: scheduler.running("a") == 1)
    queued = []
    for n, tenant in enumerate(["a", "a", "a", "b", "b", "c"]):
        queued.append(hold(scheduler, tenant, order, gates[n + 1]))
        wait_for(lambda t=tenant, c=sum(1 for x in ["a", "a", "a", "b", "b", "c"][: n + 1] if x == tenant): scheduler.waiting(t) == c)
    for gate in gates:
        gate.set()
        time.sleep(0.02)
    for thread in [first, *queued]:
        thread.join(5)
    # a's burst is interleaved with b and c instead of served first
    assert order == ["a", "a", "b", "c", "a", "b", "a"]


def test_a_full_queue_is_refused_at_once_with_retry_after() -> None:
    scheduler = FairScheduler(1, per_tenant=1, queue_per_tenant=1)
    order: list[str] = []
    go = threading.Event()
    running = hold(scheduler, "a", order, go)
    wait_for(lambda: scheduler.running("a") == 1)
    queued = hold(scheduler, "a", order, go)
    wait_for(lambda: scheduler.waiting("a") == 1)
    started = time.monotonic()
    with pytest.raises(AnalysisBusy) as refused:
        with scheduler.slot("a"):
            pass
    assert time.monotonic() - started < 0.5 and refused.value.status == 503 and refused.value.retry_after >= 1
    go.set()
    running.join(5)
    queued.join(5)


def test_a_wait_past_the_limit_is_refused_and_forgotten() -> None:
    scheduler = FairScheduler(1, per_tenant=1, queue_per_tenant=4, wait_s=0.05)
    order: list[str] = []
    go = threading.Event()
    running = hold(scheduler, "a", order, go)
    wait_for(lambda: scheduler.running("a") == 1)
    with pytest.raises(AnalysisBusy):
        with scheduler.slot("b"):
            pass
    assert scheduler.waiting("b") == 0
    go.set()
    running.join(5)
    with scheduler.slot("b"):
        assert scheduler.running("b") == 1
