"""The doctor's index checks: a running index or a persistent engine, against the store.

Each compares what the index holds (labels, and vectors where it keeps them) with
the faces the store says it must hold; disagreements go into the doctor's findings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from faceward.index.base import VectorIndex
from faceward.security.errors import SealError
from faceward.services.gallery import GalleryService

MAX_PROBLEMS = 200
"""Problems listed in a report; the counts in ``checks`` are always complete."""


class _Findings:
    def __init__(self) -> None:
        self.checks: dict[str, dict[str, Any]] = {
            "tenants": {"checked": 0, "shredded": 0, "key_unopenable": 0, "shredded_with_rows": 0},
            "faces": {"checked": 0, "orphans": 0, "duplicates": 0},
            "subject_keys": {"checked": 0, "unopenable": 0},
            "templates": {"checked": 0, "unopenable": 0, "invalid": 0, "other_model": 0},
            "erasures": {"ledger_entries": 0, "ledger_ok": True, "still_present": 0, "missing_from_ledger": 0},
            "index": {"source": "none", "tenants": 0, "faces": 0, "missing": 0, "erased_or_unknown": 0, "vector_mismatch": 0},
            "reviews": {"in_clear": 0, "of_erased_subjects": 0},
        }
        self.problems: list[dict[str, Any]] = []
        self.count = 0
        # What a repair needs, gathered while checking.
        self.orphans: dict[str, list[str]] = {}
        self.duplicates: dict[str, list[tuple[str, str, str]]] = {}
        self.still_present: list[tuple[str, str]] = []
        self.tenants_still_present: list[str] = []
        self.missing_from_ledger: list[tuple[str, str | None, datetime]] = []
        self.bad_indexes: set[str] = set()
        self.bad_engines: set[str] = set()
        self.clear_reviews: set[str] = set()
        self.erased_reviews: dict[str, list[str]] = {}

    def add(self, check: str, problem: str, tenant_id: str | None, message: str, **ids: Any) -> None:
        self.count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append({"check": check, "problem": problem, "tenant_id": tenant_id, "message": message, **ids})


def index_items(index: VectorIndex) -> tuple[np.ndarray, np.ndarray | None]:
    """``(labels, vectors)`` an index holds; vectors are None where the index cannot hand them back."""
    items = getattr(index, "items", None)
    if callable(items):
        labels, vectors = items()
        return np.asarray(labels, dtype=np.int64), np.asarray(vectors, dtype=np.float32)
    from faceward.index.exact import ExactIndex

    if isinstance(index, ExactIndex):
        # ExactIndex has no export method; its live rows are those with a label >= 0 .
        size = index._size
        live = np.nonzero(index._labels[:size] >= 0)[0]
        return index._labels[live].astype(np.int64), index._vectors[live]
    return np.zeros(0, dtype=np.int64), None


def _compare(
    kind: str, tenant_id: str, labels: np.ndarray, vectors: np.ndarray | None, upto: int,
    live: dict[int, tuple[str, np.ndarray | None]], found: _Findings,
) -> bool:
    """Count an index's disagreements with the store up to sequence ``upto``; True if it agrees."""
    checks = found.checks["index"]
    checks["tenants"] += 1
    held = {int(x) for x in labels}
    checks["faces"] += len(held)
    expected = {seq for seq in live if seq <= upto}
    missing = sorted(expected - held)
    unknown = sorted(held - set(live))
    mismatched = 0
    if vectors is not None:
        for row, label in enumerate(labels):
            template = live.get(int(label), ("", None))[1]
            if template is not None and float(np.dot(vectors[row], template)) < 0.999:
                mismatched += 1
    checks["missing"] += len(missing)
    checks["erased_or_unknown"] += len(unknown)
    checks["vector_mismatch"] += mismatched
    if missing:
        found.add("index", "missing", tenant_id, f"the {kind} index lacks {len(missing)} stored face(s)",
                  face_ids=[live[s][0] for s in missing[:10]])
    if unknown:
        found.add("index", "erased_or_unknown", tenant_id,
                  f"the {kind} index holds {len(unknown)} face(s) the store does not: erased faces are still searchable")
    if mismatched:
        found.add("index", "vector_mismatch", tenant_id, f"the {kind} index holds {mismatched} vector(s) unlike the store's")
    return not (missing or unknown or mismatched)


def _check_running_index(gallery: GalleryService, tenant_id: str, live: dict[int, tuple[str, np.ndarray | None]], found: _Findings) -> None:
    for attempt in range(2):
        try:
            seq, owner, (labels, vectors) = gallery.indexes.inspect(tenant_id, index_items)
        except (SealError, ValueError) as exc:  # the index cannot be brought up to date from the store
            found.bad_indexes.add(tenant_id)
            found.add("index", "unbuildable", tenant_id, f"the running index cannot load the stored faces: {exc}")
            return
        if vectors is None:  # an index that cannot export (Milvus): check the labels it was given
            labels = np.array(sorted(owner), dtype=np.int64)
        consistent = {int(x) for x in labels} == set(owner)
        agrees = consistent and _compare("running", tenant_id, labels, vectors, seq, live, _Findings())
        if agrees or attempt == 1:
            break
        # An enrollment or erasure may have landed between the store read and the index read: read again.
        _refresh(gallery, tenant_id, live)
    _compare("running", tenant_id, labels, vectors, seq, live, found)
    if not consistent:
        found.checks["index"]["erased_or_unknown"] += 1
        found.add("index", "bookkeeping", tenant_id, "the running index and its label map disagree")
    if not agrees:
        found.bad_indexes.add(tenant_id)


def _check_engine(gallery: GalleryService, tenant_id: str, live: dict[int, tuple[str, np.ndarray | None]], found: _Findings) -> None:
    """A persistent engine (Milvus) against the store: every row it holds, with the tenant's transform undone."""
    index = gallery.index_factory(tenant_id)  # a handle of its own: no sync from the store first
    try:
        labels, vectors = index_items(index)
    finally:
        close = getattr(index, "close", None)
        if close is not None:
            close()
    if not _compare("engine", tenant_id, labels, vectors, max(live, default=0), live, found):
        found.bad_engines.add(tenant_id)


def _refresh(gallery: GalleryService, tenant_id: str, live: dict[int, tuple[str, np.ndarray | None]]) -> None:
    """Bring ``live`` to the store's current faces (new ones without a template to compare)."""
    stored = {face.seq: face.id for face in _all_faces(gallery, tenant_id)}
    for seq in [s for s in live if s not in stored]:
        del live[seq]
    for seq, face_id in stored.items():
        live.setdefault(seq, (face_id, None))


def _all_faces(gallery: GalleryService, tenant_id: str) -> list[Any]:
    out: list[Any] = []
    after = 0
    while batch := gallery.store.faces_since(tenant_id, after, limit=5000):
        out.extend(batch)
        after = batch[-1].seq
    return out


__all__ = ["index_items"]
