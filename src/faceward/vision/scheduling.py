"""Fair sharing of the analysis workers between tenants.

One shared FIFO let one tenant's burst of heavy (or hostile) uploads delay every
other tenant's search for as long as the burst lasted. Here each tenant has its
own queue; a freed worker goes to the next tenant in round-robin order that has
work waiting and is under its cap of concurrent analyses. A tenant whose queue
is full is refused at once (:class:`AnalysisBusy`, 503 with ``Retry-After``),
so a flood costs its sender, not the others.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from faceward.errors import FacewardError


class AnalysisBusy(FacewardError):
    """This tenant already has as many analyses queued as it may: retry after ``retry_after`` seconds."""

    code = "analysis_busy"
    status = 503

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(eq=False)
class _Ticket:
    tenant: str
    granted: threading.Event = field(default_factory=threading.Event)


class FairScheduler:
    """``slots`` analyses at a time, shared round-robin between tenants.

    ``per_tenant``: most analyses one tenant runs at once (below ``slots``, the
    others always find a slot free); ``queue_per_tenant``: most it has waiting;
    ``wait_s``: longest a queued analysis waits before it is refused.
    """

    def __init__(self, slots: int, *, per_tenant: int, queue_per_tenant: int, wait_s: float = 30.0) -> None:
        if slots < 1 or per_tenant < 1 or queue_per_tenant < 0:
            raise ValueError("slots and per_tenant must be >= 1, queue_per_tenant >= 0")
        self.slots = slots
        self.per_tenant = min(per_tenant, slots)
        self.queue_per_tenant = queue_per_tenant
        self.wait_s = wait_s
        self._lock = threading.Lock()
        self._running: Counter[str] = Counter()
        self._queues: dict[str, deque[_Ticket]] = {}
        self._ring: deque[str] = deque()  # tenants with work waiting, in turn order

    @property
    def free(self) -> int:
        return self.slots - sum(self._running.values())

    def running(self, tenant: str) -> int:
        with self._lock:
            return self._running[tenant]

    def waiting(self, tenant: str) -> int:
        with self._lock:
            return len(self._queues.get(tenant, ()))

    @contextmanager
    def slot(self, tenant: str) -> Iterator[None]:
        """Hold one analysis slot for ``tenant`` for the ``with`` block; waits its turn, or raises :class:`AnalysisBusy`."""
        self._acquire(tenant)
        try:
            yield
        finally:
            self._release(tenant)

    def _acquire(self, tenant: str) -> None:
        with self._lock:
            if self.free > 0 and self._running[tenant] < self.per_tenant and not self._queues.get(tenant):
                self._running[tenant] += 1
                return
            queue = self._queues.setdefault(tenant, deque())
            if len(queue) >= self.queue_per_tenant:
                raise AnalysisBusy(
                    f"this tenant already has {len(queue) + self._running[tenant]} images being analysed or "
                    "waiting; retry shortly", retry_after=2,
                )
            ticket = _Ticket(tenant)
            queue.append(ticket)
            if tenant not in self._ring:
                self._ring.append(tenant)
        if ticket.granted.wait(self.wait_s):
            return
        with self._lock:
            if ticket.granted.is_set():  # granted between the timeout and the lock
                return
            queue.remove(ticket)
            self._forget_if_idle(tenant)
        raise AnalysisBusy("face analysis is saturated; retry shortly", retry_after=2)

    def _release(self, tenant: str) -> None:
        with self._lock:
            self._running[tenant] -= 1
            if self._running[tenant] <= 0:
                del self._running[tenant]
            self._dispatch()

    def _dispatch(self) -> None:
        """Give free slots to waiting tenants in turn (lock held)."""
        while self.free > 0:
            for _ in range(len(self._ring)):
                tenant = self._ring[0]
                self._ring.rotate(-1)  # whoever is served goes to the back of the ring
                queue = self._queues.get(tenant)
                if queue and self._running[tenant] < self.per_tenant:
                    ticket = queue.popleft()
                    self._running[tenant] += 1
                    self._forget_if_idle(tenant)
                    ticket.granted.set()
                    break
            else:
                return

    def _forget_if_idle(self, tenant: str) -> None:
        if not self._queues.get(tenant):
            self._queues.pop(tenant, None)
            if tenant in self._ring:
                self._ring.remove(tenant)
