"""Failed authentications: throttled per key id and per client address, and audited as a digest.

Anyone who knows a key id (it is in every log line and in the key itself) can send it with a
wrong secret. Without a limit each try costs a lookup and an audit entry, so a flood of tries
would grow the tenant's audit chain without bound (decision 014).

* :class:`FailureThrottle` - two token buckets of failures: one per key id, one per client
  address. A failure that finds either bucket empty is answered 429 with ``Retry-After``
  instead of 401. A *correct* key is never refused by this throttle: naming someone's key id
  must not lock its holder out, so the secret is still checked (one indexed read and one
  HMAC, the cost of any 401).
* :class:`FailureDigest` - the audit side. The first failure of a key id in a window is
  recorded at once (an alert should not wait); the others in that window are counted and
  recorded as one entry with their count when the window closes. A tenant's chain therefore
  grows by at most two entries per key id per window, however many tries arrive, and however
  many replicas serve them when they share the windows (:class:`SharedWindows`, decision 033).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from faceward.security.ratelimit import Bucket, TokenBucket

FAILURES_PER_MINUTE = 10.0
WINDOW = timedelta(minutes=1)
MAX_SOURCES = 20  # distinct sources listed in one digest entry; the rest are only counted


class FailureThrottle:
    """Token buckets of failed authentications by key id and by client address.

    An address gets three times a key id's budget: one client may hold several keys, and
    several clients behind one proxy share an address.
    """

    def __init__(
        self, per_minute: float = FAILURES_PER_MINUTE, *, clock: Callable[[], float] = time.monotonic,
        buckets: Callable[[str, float, int], Bucket] | None = None,
    ) -> None:
        """``buckets`` makes shared buckets (``(name, per_minute, burst)``, decision 033); else this process's own."""
        burst = max(1, int(per_minute))
        make = buckets or (lambda name, rate, size: TokenBucket(rate, size, clock=clock))
        self.by_key = make("auth-failures-key", per_minute, burst)
        self.by_address = make("auth-failures-address", 3 * per_minute, 3 * burst)

    def failed(self, key_id: str | None, address: str | None) -> float:
        """Count one failure; 0.0 while both budgets last, else the seconds before a retry may be answered 401."""
        waits = [0.0]
        if key_id:
            waits.append(self.by_key.take(key_id))
        if address:
            waits.append(self.by_address.take(address))
        return max(waits)


@dataclass
class _Window:
    opened: datetime
    count: int = 0  # failures after the first, which was recorded when the window opened
    throttled: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    sources: set[str] = field(default_factory=set)
    more_sources: int = 0


@dataclass(frozen=True)
class FailureSummary:
    """The failures of one key id in one window after its first, as one audit entry's details."""

    tenant_id: str
    key_id: str
    details: dict[str, object]


def summary(tenant_id: str, key_id: str, *, count: int, throttled: int, reasons: dict[str, int], sources: list[str],
            more_sources: int, since: datetime, window_s: float) -> FailureSummary:
    """One window's summary, the same whether the window was this process's or shared by replicas."""
    return FailureSummary(tenant_id, key_id, {
        "key_id": key_id, "count": count, "throttled": throttled, "reasons": dict(sorted(reasons.items())),
        "sources": sorted(sources), "more_sources": more_sources, "since": since, "window_s": int(window_s),
    })


@dataclass(frozen=True)
class Noted:
    """A failure counted in a shared window."""

    opened: bool  # it opened the window: this replica records it at once
    ends_in_s: float  # when the window ends, on the shared clock
    ended: FailureSummary | None = None  # the window it found over and unrecorded: this replica records it


@dataclass(frozen=True)
class Taken:
    """A shared window asked for when it should have ended: recorded here, still open, or gone."""

    summary: FailureSummary | None = None  # this replica records it (None: gone, or nothing after the first)
    open_for_s: float | None = None  # still open on the shared clock: ask again then


class SharedWindows(Protocol):
    """Failure windows every replica counts into (:class:`~faceward.security.failure_windows.SharedFailureWindows`).

    Both calls answer None while the shared store is away; the digest then counts on its own.
    """

    def note(self, tenant_id: str, key_id: str, *, window_s: float, reason: str, source: str | None,
             throttled: bool) -> Noted | None: ...

    def take(self, tenant_id: str, key_id: str, *, window_s: float, force: bool) -> Taken | None: ...


class FailureDigest:
    """Groups a key id's failed authentications into windows (thread-safe, bounded memory)."""

    def __init__(
        self, window: timedelta = WINDOW, *, max_open: int = 10_000, windows: SharedWindows | None = None,
    ) -> None:
        """``windows`` shares the windows between replicas (decision 033): then a key id's window gets its
        first failure and one summary with every replica's count, whatever the replica count."""
        self.window = window
        self._shared = windows
        self._max_open = max_open
        self._open: dict[tuple[str, str], _Window] = {}
        self._joined: dict[tuple[str, str], datetime] = {}  # shared windows counted in here: when to ask for them
        self._closed: list[FailureSummary] = []
        self._lock = threading.Lock()

    def note(self, tenant_id: str, key_id: str, *, reason: str, source: str | None, throttled: bool,
             now: datetime) -> bool:
        """Count a failure. True when it opens a window: the caller records it at once."""
        if self._shared is not None:
            # Outside the lock: a slow or unreachable Redis must not hold up every other failure's count.
            noted = self._shared.note(tenant_id, key_id, window_s=self.window.total_seconds(), reason=reason,
                                      source=source, throttled=throttled)
            if noted is not None:
                with self._lock:
                    if noted.ended is not None:
                        self._closed.append(noted.ended)
                    if (tenant_id, key_id) in self._joined or len(self._joined) < self._max_open:
                        self._joined[(tenant_id, key_id)] = now + timedelta(seconds=noted.ends_in_s)
                return noted.opened
        with self._lock:
            current = self._open.get((tenant_id, key_id))
            if current is not None and now - current.opened < self.window:
                self._count(current, reason, source, throttled)
                return False
            if current is not None:
                self._close(tenant_id, key_id, current)
            elif len(self._open) >= self._max_open:
                return True  # too many key ids failing at once: record this one singly rather than grow
            self._open[(tenant_id, key_id)] = _Window(now)
        return True

    @staticmethod
    def _count(window: _Window, reason: str, source: str | None, throttled: bool) -> None:
        window.count += 1
        window.throttled += throttled
        window.reasons[reason] += 1
        if source and source not in window.sources:
            if len(window.sources) < MAX_SOURCES:
                window.sources.add(source)
            else:
                window.more_sources += 1

    def _close(self, tenant_id: str, key_id: str, window: _Window) -> None:
        del self._open[(tenant_id, key_id)]
        if window.count:
            self._closed.append(summary(
                tenant_id, key_id, count=window.count, throttled=window.throttled, reasons=dict(window.reasons),
                sources=list(window.sources), more_sources=window.more_sources, since=window.opened,
                window_s=self.window.total_seconds(),
            ))

    def due(self, now: datetime, *, everything: bool = False) -> list[FailureSummary]:
        """Summaries of the windows that have closed (all of them with ``everything``), handed out once.

        A shared window is handed to one replica only; with ``everything`` (shutdown) this replica takes
        those it counted in before they end, so no count is lost with it.
        """
        with self._lock:
            for (tenant_id, key_id), window in list(self._open.items()):
                if everything or now - window.opened >= self.window:
                    self._close(tenant_id, key_id, window)
            asks = [pair for pair, when in self._joined.items() if everything or when <= now]
        for tenant_id, key_id in asks:  # outside the lock, as in note
            taken = self._take(tenant_id, key_id, force=everything)
            with self._lock:
                if taken is not None and taken.open_for_s is not None:
                    self._joined[(tenant_id, key_id)] = now + timedelta(seconds=taken.open_for_s)
                elif taken is not None:
                    self._joined.pop((tenant_id, key_id), None)
                    if taken.summary is not None:
                        self._closed.append(taken.summary)
        with self._lock:
            out, self._closed = self._closed, []
        return out

    def _take(self, tenant_id: str, key_id: str, *, force: bool) -> Taken | None:
        if self._shared is None:
            return Taken()
        return self._shared.take(tenant_id, key_id, window_s=self.window.total_seconds(), force=force)


__all__ = [
    "FAILURES_PER_MINUTE", "FailureDigest", "FailureSummary", "FailureThrottle", "Noted", "SharedWindows", "Taken",
    "WINDOW", "summary",
]
