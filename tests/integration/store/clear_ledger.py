"""Erasure ledgers as faceward wrote them before version 2 (ids in clear), for the tests of their rewrite."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

from faceward.store.ledger import GENESIS, LedgerHead

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def write_clear(path: Path, rows: list[tuple[str, str, str | None]], *, at: datetime = AT) -> list[LedgerHead]:
    """Write ``(kind, tenant id, subject id)`` rows in the old format; returns the head after each line."""
    prev, lines, heads = GENESIS, [], []
    for n, (kind, tenant_id, subject_id) in enumerate(rows):
        body = {"n": n, "kind": kind, "tenant_id": tenant_id, "subject_id": subject_id, "at": at.isoformat()}
        digest = hashlib.sha256(prev.encode() + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        lines.append(json.dumps({**body, "prev": prev, "hash": digest}, sort_keys=True, separators=(",", ":")))
        prev = digest
        heads.append(LedgerHead(n + 1, digest))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return heads
