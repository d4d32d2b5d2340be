"""The tamper-evident audit log: one hash chain per tenant, payloads sealed with the tenant key.

Entry ``n`` of a tenant stores::

    at           in clear (time-range queries)
    payload      seal(tenant key, {"actor", "action", "source", "details"}, aad(tenant, "audit_log", n))
    mac          HMAC-SHA256(audit key, [tenant, n, at, mac of entry n-1] "\\n" payload plaintext)

where the audit key is derived (HKDF) from the tenant's data key, and entry 0's
mac is 32 zero bytes. ``audit_heads`` keeps each tenant's last (seq, mac): the
row an append locks, and what :meth:`AuditLog.verify` checks the tail against.
Editing an entry breaks its own mac; deleting one leaves a gap in the sequence;
inserting or reordering breaks the chain at the first moved entry. The action is
sealed too, so a stolen database cannot count a tenant's searches.

What the chain cannot show on its own: someone with write access to the
database who deletes the newest entries *and* rolls the head back. Anchor the
head outside the database (``faceward audit verify --json`` prints it) to catch
that.

Erasures must record ids only (``subject_id``, face ids), never names: the
audit log outlives the subject and is sealed with the tenant key, not the
subject's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from enum import Enum
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection

from faceward.errors import InvalidInput
from faceward.security.crypto import AUDIT_BUCKET, aad, open_sealed, seal
from faceward.security.errors import SealError
from faceward.store import SqlStore
from faceward.store.accounts import AccountStore, utc
from faceward.store.records import AuditRecord

GENESIS = bytes(32)
MAX_LIMIT = 1000
_BATCH = 500


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    source: str | None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AuditReport:
    """``first_bad`` is the lowest seq where the chain breaks (a missing entry's own seq), None when ok."""

    ok: bool
    entries: int
    first_bad: int | None
    reason: str | None
    head: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def audit_key(tenant_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"faceward/audit-chain/v1").derive(tenant_key)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not allowed in audit details")


def _stamp(at: datetime) -> str:
    return utc(at).isoformat(timespec="microseconds")


def chain_mac(key: bytes, tenant_id: str, seq: int, at: datetime, previous: bytes, payload: bytes) -> bytes:
    header = json.dumps([tenant_id, seq, _stamp(at), previous.hex()]).encode()
    return hmac.new(key, header + b"\n" + payload, hashlib.sha256).digest()


class AuditLog:
    """Append and read a tenant's audit entries; verify its chain."""

    def __init__(
        self, store: SqlStore, keys: Callable[[str], bytes], *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.store = store
        self._keys = keys
        self._repo = AccountStore(store)
        self._clock = clock
        self.failures = 0  # appends that raised (the metrics read it: an act that failed its audit)

    def append(
        self,
        tenant_id: str,
        *,
        actor: str,
        action: str,
        details: dict[str, Any],
        source: str | None,
        conn: Connection | None = None,
    ) -> AuditEntry:
        """Record one act. Raises on any failure, and the caller must then fail the act.

        Pass ``conn`` (from :meth:`SqlStore.transaction`) to commit the entry with the act itself.
        """
        if not action or len(action) > 64:
            raise InvalidInput("an audit action of 1 to 64 characters is required")
        try:
            body = {"actor": str(actor), "action": action, "source": source, "details": dict(details)}
            payload = json.dumps(body, default=_jsonable, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"audit details must be plain JSON: {exc}") from None
        tenant_key = self._keys(tenant_id)
        mac_key = audit_key(tenant_key)
        at = utc(self._clock())

        def build(seq: int, previous: bytes) -> AuditRecord:
            return AuditRecord(
                tenant_id=tenant_id,
                seq=seq,
                at=at,
                payload_sealed=seal(tenant_key, payload, aad(tenant_id, "audit_log", str(seq)), pad_to=AUDIT_BUCKET),
                mac=chain_mac(mac_key, tenant_id, seq, at, previous or GENESIS, payload),
            )

        try:
            record = self._repo.append_audit(tenant_id, build, conn=conn)
        except Exception:
            self.failures += 1
            raise
        return _entry(record.seq, at, json.loads(payload))

    def _open(self, tenant_key: bytes, record: AuditRecord) -> AuditEntry:
        try:
            plain = open_sealed(tenant_key, record.payload_sealed, aad(record.tenant_id, "audit_log", str(record.seq)))
            return _entry(record.seq, record.at, json.loads(plain))
        except (SealError, ValueError):
            return AuditEntry(record.seq, record.at, "?", "(unreadable)", None, {"error": "entry failed authentication; run audit verify"})

    def entries(
        self,
        tenant_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 100,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[AuditEntry]:
        """Entries with ``since <= at < until``, in seq order (``newest_first`` reverses it).

        ``actor`` and ``action`` match exactly; they are sealed, so filtering
        happens here after opening, scanning the time range in batches.
        """
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            raise InvalidInput(f"limit must be 1..{MAX_LIMIT} and offset >= 0")
        tenant_key = self._keys(tenant_id)
        out: list[AuditEntry] = []
        skip = offset
        cursor: int | None = None
        while True:
            batch = self._repo.audit_rows(
                tenant_id, since=since, until=until, limit=_BATCH, newest_first=newest_first,
                after_seq=None if newest_first else cursor, before_seq=cursor if newest_first else None,
            )
            for record in batch:
                entry = self._open(tenant_key, record)
                if (actor is not None and entry.actor != actor) or (action is not None and entry.action != action):
                    continue
                if skip:
                    skip -= 1
                    continue
                out.append(entry)
                if len(out) == limit:
                    return out
            if len(batch) < _BATCH:
                return out
            cursor = batch[-1].seq

    def verify(self, tenant_id: str) -> AuditReport:
        """Walk the whole chain; name the first entry that was edited, removed, inserted or moved."""
        tenant_key = self._keys(tenant_id)
        mac_key = audit_key(tenant_key)
        previous = GENESIS
        expected = 1
        count = 0
        bad: tuple[int, str] | None = None
        cursor = 0
        while True:
            batch = self._repo.audit_rows(tenant_id, after_seq=cursor, limit=_BATCH)
            for record in batch:
                count += 1
                if bad is not None:
                    continue
                if record.seq != expected:
                    bad = (expected, f"entry {expected} is missing")
                    continue
                try:
                    plain = open_sealed(tenant_key, record.payload_sealed, aad(tenant_id, "audit_log", str(record.seq)))
                except SealError:
                    bad = (record.seq, f"entry {record.seq} does not open (edited or moved)")
                    continue
                mac = chain_mac(mac_key, tenant_id, record.seq, record.at, previous, plain)
                if not hmac.compare_digest(mac, record.mac):
                    bad = (record.seq, f"entry {record.seq} does not chain to entry {record.seq - 1}")
                    continue
                previous = record.mac
                expected += 1
            if len(batch) < _BATCH:
                break
            cursor = batch[-1].seq
        head = self._repo.audit_head(tenant_id)
        last = expected - 1
        if bad is None:
            if head is None and count:
                bad = (1, "the chain head is missing")
            elif head is not None and head[0] > last:
                bad = (last + 1, f"entries {last + 1}..{head[0]} are missing (the log was truncated)")
            elif head is not None and head[0] == last and count and not hmac.compare_digest(head[1], previous):
                bad = (last, f"entry {last} does not match the chain head")
        if bad is None:
            return AuditReport(True, count, None, None, head[0] if head else 0)
        return AuditReport(False, count, bad[0], bad[1], head[0] if head else None)


def _entry(seq: int, at: datetime, body: dict[str, Any]) -> AuditEntry:
    return AuditEntry(seq, utc(at), body["actor"], body["action"], body.get("source"), body.get("details") or {})


__all__ = ["AuditEntry", "AuditLog", "AuditReport", "audit_key", "chain_mac"]
