"""Per-key request rate limiting: an in-process token bucket.

Each API key gets a bucket of ``burst`` tokens refilled at ``per_minute / 60``
tokens a second; a request takes one token or is refused with the seconds until
the next token. State lives in this process only: with several workers
(``uvicorn --workers N`` or several replicas) each keeps its own buckets, so a
key may make up to N times the configured rate, unless ``FACEWARD_RATE_LIMIT_REDIS``
names a Redis they share (:mod:`faceward.security.shared_buckets`, decision 033).
The daily search quota is counted in the database
(:class:`~faceward.services.usage.UsageService`) and so holds across workers.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from faceward.security.errors import RateLimited


class Bucket(Protocol):
    """Token buckets keyed by an opaque string: this process's (:class:`TokenBucket`) or shared ones
    (:mod:`faceward.security.shared_buckets`)."""

    def take(self, key: str) -> float:
        """Take a token for ``key``: 0.0 when granted, else the seconds to wait (> 0) before one is free."""
        ...

    def peek(self, key: str) -> float:
        """The seconds ``key`` must wait before a take could be granted (0.0: now); takes nothing."""
        ...


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucket:
    """Thread-safe token buckets keyed by an opaque string (the API key id)."""

    def __init__(
        self, per_minute: float, burst: int, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be > 0 and burst >= 1")
        self.rate = per_minute / 60.0  # tokens per second
        self.burst = float(burst)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one token for ``key``: 0.0 when granted, else the seconds to wait (> 0) before one is free."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._max_keys:
                    self._evict_full(now)
                bucket = self._buckets[key] = _Bucket(self.burst, now)
            bucket.tokens = self._refilled(bucket, now)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return self._wait(bucket.tokens)

    def peek(self, key: str) -> float:
        """The seconds ``key`` must wait before :meth:`take` could grant a token (0.0: it could now).

        Takes nothing, so an unauthenticated caller naming someone else's key id cannot spend its
        tokens; only :meth:`take`, after authentication, does.
        """
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            return 0.0 if bucket is None else self._wait(self._refilled(bucket, now))

    def _refilled(self, bucket: _Bucket, now: float) -> float:
        return min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)

    def _wait(self, tokens: float) -> float:
        """Seconds until ``tokens`` reaches one (0.0 when it has)."""
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _evict_full(self, now: float) -> None:
        # Buckets that have refilled completely carry no state worth keeping.
        full = [k for k, b in self._buckets.items() if self._refilled(b, now) >= self.burst]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self._max_keys:  # still full: forget the stalest half
            stale = sorted(self._buckets, key=lambda k: self._buckets[k].updated)[: len(self._buckets) // 2]
            for k in stale:
                del self._buckets[k]


def retry_after_seconds(wait: float) -> int:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return max(1, math.ceil(wait))


def key_rate_limited(wait: float) -> RateLimited:
    """The refusal of a key past its rate, ``wait`` seconds before its next token."""
    return RateLimited("too many requests for this key; slow down", retry_after=retry_after_seconds(wait))
