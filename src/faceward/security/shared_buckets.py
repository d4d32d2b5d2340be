"""Token buckets that every replica shares, in Redis: one rate per key however many processes serve it.

With ``FACEWARD_RATE_LIMIT_REDIS`` set, the per-key request rate (:class:`~faceward.services.gate.Gate`
and the ASGI middleware) and the failed-authentication throttle
(:class:`~faceward.security.throttle.FailureThrottle`) keep their buckets in Redis instead of in
each process, so N replicas behind a load balancer no longer grant N times the configured rate
(decision 033). A bucket is a Redis hash updated by one Lua script, atomically, on the server's
clock (replicas' clocks never meet). It expires once it would be full again: an idle key leaves
nothing behind. Bucket names are SHA-256 digests: Redis never holds a key id or a client address.

If Redis cannot be reached the buckets fall back, for :data:`RETRY_AFTER_S`, to this process's own
(per-process limits, as without Redis), and say so once in the log: a limiter must not take the
service down with it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from faceward.errors import ConfigError
from faceward.security.ratelimit import Bucket, TokenBucket

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_AFTER_S = 5.0  # after a failed call, how long the local buckets serve before Redis is tried again
TIMEOUT_S = 0.25  # a limiter that waits longer than this costs more than it saves

# KEYS[1]: the bucket; ARGV: tokens per second, burst, 1 to take a token or 0 to look.
# Returns the seconds to wait for a token (0 when one was, or could be, taken) as a string.
_SCRIPT = """
local rate, burst, take = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens, updated = tonumber(state[1]), tonumber(state[2])
if tokens == nil or updated == nil then
  tokens, updated = burst, now
end
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens >= 1 then
  if take == 1 then tokens = tokens - 1 end
else
  wait = (1 - tokens) / rate
end
if take == 1 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
end
return tostring(wait)
"""

BucketMaker = Callable[[str, float, int], Bucket]
"""``(name, per_minute, burst) -> bucket``: how the gate and the throttle get their buckets."""


def local_buckets(name: str, per_minute: float, burst: int) -> Bucket:
    """This process's own bucket (the default, and the fallback while Redis is away)."""
    return TokenBucket(per_minute, burst)


class SharedBuckets:
    """Makes buckets kept in the Redis at ``url`` (``redis://host:port/db``, ``rediss://`` for TLS)."""

    def __init__(self, url: str, *, prefix: str = "faceward:bucket", client: Any = None) -> None:
        import redis

        try:
            self._client = client or redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
        except ValueError as exc:
            raise ConfigError(f"FACEWARD_RATE_LIMIT_REDIS is not a Redis URL (redis://host:port/db): {exc}") from None
        self._script = self._client.register_script(_SCRIPT)
        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        self.prefix = prefix
        self._down_until = 0.0
        self._lock = threading.Lock()

    def __call__(self, name: str, per_minute: float, burst: int) -> Bucket:
        return SharedBucket(self, name, per_minute, burst)

    def _call(self, call: Callable[[], T], away: T) -> T:
        """``call()`` against Redis; ``away`` while it is unreachable (said once per outage in the log)."""
        if time.monotonic() < self._down_until:
            return away
        try:
            return call()
        except self._errors as exc:
            with self._lock:
                if time.monotonic() >= self._down_until:
                    log.warning("rate-limit Redis unreachable (%s); this process limits on its own for %.0f s",
                                type(exc).__name__, RETRY_AFTER_S)
                self._down_until = time.monotonic() + RETRY_AFTER_S
            return away

    def run(self, bucket: str, rate: float, burst: int, take: bool) -> float | None:
        """The script's answer for ``bucket``; ``None`` while Redis is unreachable (the caller falls back)."""
        return self._call(lambda: float(self._script(keys=[bucket], args=[repr(rate), burst, 1 if take else 0])), None)

    def script(self, source: str) -> Callable[[list[str], list[Any]], Any]:
        """A Lua script run on this Redis (the shared failure windows' too); it answers None while Redis is away."""
        registered = self._client.register_script(source)
        return lambda keys, args: self._call(lambda: registered(keys=keys, args=args), None)

    def close(self) -> None:
        self._client.close()


class SharedBucket:
    """One named family of buckets (e.g. per API key id) in :class:`SharedBuckets`' Redis."""

    def __init__(self, shared: SharedBuckets, name: str, per_minute: float, burst: int) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be > 0 and burst >= 1")
        self._shared, self.name = shared, name
        self.rate, self.burst = per_minute / 60.0, burst
        self._fallback = TokenBucket(per_minute, burst)

    def _bucket(self, key: str) -> str:
        digest = hashlib.sha256(f"{self.name}\x00{key}".encode()).hexdigest()[:32]
        return f"{self._shared.prefix}:{self.name}:{digest}"

    def take(self, key: str) -> float:
        wait = self._shared.run(self._bucket(key), self.rate, self.burst, take=True)
        return self._fallback.take(key) if wait is None else wait

    def peek(self, key: str) -> float:
        wait = self._shared.run(self._bucket(key), self.rate, self.burst, take=False)
        return self._fallback.peek(key) if wait is None else wait


def bucket_maker(redis_url: str | None) -> BucketMaker:
    """Shared buckets when a Redis URL is configured, else each process's own."""
    return SharedBuckets(redis_url) if redis_url else local_buckets


__all__ = ["BucketMaker", "SharedBucket", "SharedBuckets", "bucket_maker", "local_buckets"]
