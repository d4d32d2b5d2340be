"""Per-tenant in-memory indexes that follow the store's change sequence.

Each tenant gets its own index (never a shared space). Before a search the
index pulls faces and erasures newer than the last sequence it saw, so a face
enrolled through another worker is found, and an erased subject vanishes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar, cast

import numpy as np
from numpy.typing import NDArray

from faceward.index import ExactIndex, VectorIndex
from faceward.index.base import IndexError_, Labels
from faceward.store import FaceRecord, SqlStore


@dataclass
class TenantIndex:
    index: VectorIndex
    seq: int = 0
    erasure_seq: int = 0
    owner: dict[int, tuple[str, str]] = field(default_factory=dict)  # label -> (face_id, subject_id)
    generation: int = 0  # the tenant's template-transform generation the index was built under
    by_subject: dict[str, set[int]] = field(default_factory=dict)

    def remove_subject(self, subject_id: str, labels: Iterable[int] = ()) -> None:
        labels = self.by_subject.pop(subject_id, set()) | {int(x) for x in labels}
        self.index.remove(labels)
        for label in labels:
            self.owner.pop(label, None)


class Neighbours(NamedTuple):
    entry: TenantIndex
    size: int  # faces the index held when searched
    labels: Labels
    scores: np.ndarray


T = TypeVar("T")
Opener = Callable[[list[FaceRecord]], np.ndarray]  # sealed faces -> N x d templates


class SearchIndexes:
    def __init__(
        self, store: SqlStore, opener: Opener, factory: Callable[[str], VectorIndex] | None = None,
        purge: Callable[[str], None] | None = None, generation: Callable[[str], int] | None = None,
    ) -> None:
        """``purge(tenant_id)`` deletes a persistent engine's data of a tenant this process has not loaded;
        ``generation(tenant_id)`` is the tenant's template-transform generation (a protected engine's):
        an index built under another one is built again."""
        self._store = store
        self._open = opener
        self._factory = factory or (lambda _tenant: ExactIndex())
        self._purge = purge
        self._generation = generation
        self._tenants: dict[str, TenantIndex] = {}
        self._lock = threading.RLock()

    def get(self, tenant_id: str) -> TenantIndex:
        """The tenant's index, brought up to date with the store."""
        with self._lock:
            entry = self._tenants.get(tenant_id)
            generation = self._generation(tenant_id) if self._generation is not None else 0
            if entry is not None and entry.generation != generation:
                # Renewed (by another process, which dropped the engine's rows): build it again under the
                # new transform. Not dropped here: that process, or another replica, may be refilling it.
                close = getattr(entry.index, "close", None)
                if close is not None:
                    close()
                entry = None
            if entry is None:
                entry = self._tenants[tenant_id] = TenantIndex(self._factory(tenant_id), generation=generation)
            self._sync(tenant_id, entry)
            return entry

    def search(self, tenant_id: str, queries: np.ndarray, wanted: int) -> Neighbours:
        """Up to ``wanted`` neighbours (no more than the index holds) in the tenant's up-to-date index.

        A renewal in another process may drop the engine's rows between reading the generation and
        searching them; then the search fails, the generation has moved, and it runs once more under
        the new one. Any other failure is the caller's to report."""
        try:
            return self._search(tenant_id, queries, wanted)
        except IndexError_:
            with self._lock:
                held = self._tenants.get(tenant_id)
            if self._generation is None or held is None or self._generation(tenant_id) == held.generation:
                raise
        return self._search(tenant_id, queries, wanted)

    def _search(self, tenant_id: str, queries: np.ndarray, wanted: int) -> Neighbours:
        entry = self.get(tenant_id)
        size = len(entry.index)
        labels, scores = entry.index.search(queries, min(size, wanted) or 1)
        return Neighbours(entry, size, labels, scores)

    def _sync(self, tenant_id: str, entry: TenantIndex) -> None:
        first = entry.seq == 0 and getattr(entry.index, "persistent", False)
        for seq, subject_id in self._store.erasures_since(tenant_id, entry.erasure_seq):
            entry.remove_subject(subject_id)
            entry.erasure_seq = seq
        while True:
            batch = self._store.faces_since(tenant_id, entry.seq)
            if not batch:
                if first:
                    # A persistent engine (Milvus) keeps what earlier processes left: the store is the
                    # truth, so labels it no longer has (erased while no one had this tenant loaded) go.
                    stale = set(entry.index.labels().tolist()) - set(entry.owner)  # type: ignore[attr-defined]
                    entry.index.remove(sorted(stale))
                return
            vectors = self._open(batch)
            # A subject erased between the two reads yields NaN rows: skip them.
            live = cast(NDArray[np.bool_], np.isfinite(vectors).all(axis=1))
            kept = [face for face, ok in zip(batch, live) if ok]
            entry.index.add(np.array([f.seq for f in kept], dtype=np.int64), vectors[live])
            for face in kept:
                entry.owner[face.seq] = (face.id, face.subject_id)
                entry.by_subject.setdefault(face.subject_id, set()).add(face.seq)
            entry.seq = batch[-1].seq

    def inspect(self, tenant_id: str, reader: Callable[[VectorIndex], T]) -> tuple[int, dict[int, tuple[str, str]], T]:
        """Bring the tenant's index up to date and return ``(seq, label -> (face, subject), reader(index))``,
        all read under the lock so that no search or sync changes them meanwhile."""
        with self._lock:
            entry = self.get(tenant_id)
            return entry.seq, dict(entry.owner), reader(entry.index)

    def loaded(self) -> list[str]:
        """The tenants whose index this process holds now (``faceward doctor`` checks these)."""
        with self._lock:
            return list(self._tenants)

    def status(self) -> tuple[int, int, int]:
        """``(vectors held, faces in the store not yet taken in, tenant indexes held)`` for the metrics."""
        with self._lock:
            held = [(tenant_id, len(entry.index), entry.seq) for tenant_id, entry in self._tenants.items()]
        behind = sum(self._store.count_faces_since(tenant_id, seq) for tenant_id, _, seq in held)
        return sum(size for _, size, _ in held), behind, len(held)

    def sync_loaded(self) -> int:
        """Bring every index this process holds up to date with the store; returns how many (readiness)."""
        tenants = self.loaded()
        for tenant_id in tenants:
            self.get(tenant_id)
        return len(tenants)

    def forget_subject(self, tenant_id: str, subject_id: str, labels: Iterable[int] = ()) -> None:
        """Remove a subject's vectors now; ``labels`` (its faces' seqs) reach a persistent engine not loaded here."""
        labels = list(labels)
        with self._lock:
            entry = self._tenants.get(tenant_id)
            if entry is None and labels and self._purge is not None:
                entry = self._tenants[tenant_id] = TenantIndex(self._factory(tenant_id))  # synced on first get()
            if entry is not None:
                entry.remove_subject(subject_id, labels)

    def drop_tenant(self, tenant_id: str) -> None:
        """Forget the tenant's index; the next search builds it again from the store."""
        with self._lock:
            self._tenants.pop(tenant_id, None)

    def erase_tenant(self, tenant_id: str) -> None:
        """Forget the tenant's index and delete its data in a persistent engine (tenant erasure, new model)."""
        with self._lock:
            entry = self._tenants.pop(tenant_id, None)
            drop = getattr(entry.index, "drop", None) if entry is not None else None
            if drop is not None:
                drop()
            elif self._purge is not None:
                self._purge(tenant_id)
