"""Failed sign-in windows shared by every replica, in Redis: one summary per key id and window, whatever the count.

The failed sign-in digest (:class:`~faceward.security.throttle.FailureDigest`, decision 014) records a key id's
first failure of a window at once and the rest as one entry when the window ends. Kept in each process, N
replicas wrote a summary each: up to 1 + N entries a window. With ``FACEWARD_RATE_LIMIT_REDIS`` (decision 033)
the window is one Redis hash per tenant and key id, changed only by two Lua scripts on Redis's own clock:

* ``note`` counts a failure into the open window, or opens one (this replica records the failure at once) and
  hands over the window it found ended and not yet recorded (this replica records that one);
* ``take`` hands an ended window to exactly one replica and deletes it. A replica asks for the windows it
  counted in once they should have ended (on every failure and every 10 s) and, at shutdown, early.

Each window is therefore recorded once, with every replica's count, and none is lost while one replica that
counted in it lives; a window whose every counting replica died expires unrecorded :data:`GRACE_S` after its
end, as a crashed process's did. Redis holds no key id and no address: the hash is named by a SHA-256 digest of
tenant and key id (the replica that records it knows them: it counted in it), and the sources are sealed under a
key derived from the tenant's, found again by a keyed hash. While Redis is away each replica counts on its own.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime, timezone

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from faceward.errors import FacewardError
from faceward.security.crypto import aad, open_sealed, seal
from faceward.security.errors import SealError
from faceward.security.shared_buckets import BucketMaker, SharedBuckets
from faceward.security.throttle import MAX_SOURCES, FailureSummary, Noted, Taken, summary

GRACE_S = 60.0  # an ended window waits this long for a replica that counted in it (they ask every 10 s)
INFO = b"faceward/auth-failure-window/v1"

# KEYS[1]: the window. ARGV: window ms, grace ms, reason, throttled 1/0, source ref ('' for none), sealed source,
# most sources. Returns {1 if opened, ms until it ends, the ended window's fields or {}}.
_NOTE = """
local window, grace = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local opened = tonumber(redis.call('HGET', KEYS[1], 'opened'))
local ended = {}
if opened and now >= opened + window then
  ended = redis.call('HGETALL', KEYS[1])
  redis.call('DEL', KEYS[1])
  opened = nil
end
if not opened then
  redis.call('HSET', KEYS[1], 'opened', now, 'count', 0)
  redis.call('PEXPIRE', KEYS[1], window + grace)
  return {1, window, ended}
end
redis.call('HINCRBY', KEYS[1], 'count', 1)
if ARGV[4] == '1' then redis.call('HINCRBY', KEYS[1], 'throttled', 1) end
redis.call('HINCRBY', KEYS[1], 'r:' .. ARGV[3], 1)
if ARGV[5] ~= '' and redis.call('HEXISTS', KEYS[1], 's:' .. ARGV[5]) == 0 then
  if tonumber(redis.call('HGET', KEYS[1], 'sources') or '0') < tonumber(ARGV[7]) then
    redis.call('HSET', KEYS[1], 's:' .. ARGV[5], ARGV[6])
    redis.call('HINCRBY', KEYS[1], 'sources', 1)
  else
    redis.call('HINCRBY', KEYS[1], 'more', 1)
  end
end
return {0, opened + window - now, ended}
"""

# KEYS[1]: the window. ARGV: window ms, 1 to take it before it ends. Returns {0} (gone), {2, ms until it
# ends} (still open) or {1, its fields} (taken: this replica records it).
_TAKE = """
local window = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local opened = tonumber(redis.call('HGET', KEYS[1], 'opened'))
if not opened then return {0} end
if ARGV[2] ~= '1' and now < opened + window then return {2, opened + window - now} end
local fields = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return {1, fields}
"""


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class SharedFailureWindows:
    """:class:`~faceward.security.throttle.SharedWindows` in :class:`SharedBuckets`' Redis.

    ``tenant_key`` is the vault's (a tenant's data key): the sources are sealed under a key derived from it.
    """

    def __init__(self, shared: SharedBuckets, tenant_key: Callable[[str], bytes]) -> None:
        self._note = shared.script(_NOTE)
        self._take = shared.script(_TAKE)
        self._prefix = shared.prefix
        self._tenant_key = tenant_key

    def _name(self, tenant_id: str, key_id: str) -> str:
        digest = hashlib.sha256(f"{tenant_id}\x00{key_id}".encode()).hexdigest()[:32]
        return f"{self._prefix}:failures:{digest}"

    def _key(self, tenant_id: str) -> bytes | None:
        """The sources' key; None when the tenant's key is gone (shredded meanwhile): sources are then not named."""
        try:
            tenant_key = self._tenant_key(tenant_id)
        except FacewardError:
            return None
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(tenant_key)

    def note(self, tenant_id: str, key_id: str, *, window_s: float, reason: str, source: str | None,
             throttled: bool) -> Noted | None:
        ref, sealed = b"", b""
        key = self._key(tenant_id) if source else None
        if source and key is not None:
            ref = hmac.new(key, source.encode(), hashlib.sha256).hexdigest()[:32].encode()
            sealed = seal(key, source.encode(), aad(tenant_id, "auth-failure-source"))
        answer = self._note([self._name(tenant_id, key_id)], [
            _ms(window_s), _ms(GRACE_S), reason, 1 if throttled else 0, ref, sealed, MAX_SOURCES])
        if answer is None:
            return None
        opened, ends_in_ms, ended = answer
        return Noted(bool(opened), int(ends_in_ms) / 1000, self._summary(tenant_id, key_id, ended, window_s))

    def take(self, tenant_id: str, key_id: str, *, window_s: float, force: bool) -> Taken | None:
        answer = self._take([self._name(tenant_id, key_id)], [_ms(window_s), 1 if force else 0])
        if answer is None:
            return None
        if int(answer[0]) == 2:
            return Taken(open_for_s=int(answer[1]) / 1000)
        return Taken(self._summary(tenant_id, key_id, answer[1], window_s) if int(answer[0]) == 1 else None)

    def _summary(self, tenant_id: str, key_id: str, flat: list[bytes], window_s: float) -> FailureSummary | None:
        fields = {bytes(flat[i]).decode(): bytes(flat[i + 1]) for i in range(0, len(flat), 2)}
        count = int(fields.get("count", b"0"))
        if not count:
            return None  # nothing after the first failure, which was recorded when the window opened
        key = self._key(tenant_id) if any(name.startswith("s:") for name in fields) else None
        sources = []
        for name, value in fields.items():
            if name.startswith("s:") and key is not None:
                try:
                    sources.append(open_sealed(key, value, aad(tenant_id, "auth-failure-source")).decode())
                except SealError:
                    continue  # sealed under a key the tenant no longer has: counted, not named
        return summary(
            tenant_id, key_id, count=count, throttled=int(fields.get("throttled", b"0")),
            reasons={name[2:]: int(v) for name, v in fields.items() if name.startswith("r:")}, sources=sources,
            more_sources=int(fields.get("more", b"0")),
            since=datetime.fromtimestamp(int(fields["opened"]) / 1000, timezone.utc), window_s=window_s,
        )


def shared_windows(buckets: BucketMaker, tenant_key: Callable[[str], bytes]) -> SharedFailureWindows | None:
    """The failure windows in the Redis the rate buckets are shared through; None when each process keeps its own."""
    return SharedFailureWindows(buckets, tenant_key) if isinstance(buckets, SharedBuckets) else None


__all__ = ["GRACE_S", "SharedFailureWindows", "shared_windows"]
