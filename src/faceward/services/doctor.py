"""Keeping the store honest: ``faceward doctor`` checks and repairs (the retention purge is :mod:`faceward.services.retention`).

:func:`doctor` checks, for every tenant whose key still exists:

* **faces** - no face lacks its subject (orphans) and no image is enrolled twice for one subject;
* **subject_keys** - every subject's wrapped key opens under its tenant key;
* **templates** - every sealed template opens under its subject key and is a finite unit vector
  of the tenant's model;
* **erasures** - the erasure ledger's hash chain holds, no subject or tenant it lists is still
  stored, and every erasure the store recorded is in the ledger;
* **index** - with a running index (the server's :class:`GalleryService`), index snapshot files
  or a persistent engine (Milvus: every tenant's collection, protected templates turned back with
  the tenant's transform), the index holds exactly the stored faces: none missing, none erased,
  the same vectors.

``repair=True`` then rebuilds every checked index from the store (the store is the
truth), finishes erasures the ledger lists, copies the store's erasures into the
ledger, and removes orphaned and duplicated faces; it never touches a template
that fails to open (that is a key problem for a person to look at). The report
is the state *after* the repairs, with what was done in ``repairs``.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceward.index.base import VectorIndex
from faceward.security.errors import SealError
from faceward.security.vault import SubjectKeyRef, TenantVault
from faceward.services.gallery import GalleryService
from faceward.store.ledger import LedgerError
from faceward.errors import NotFound
from faceward.settings import IndexBackend
from faceward.store.integrity import IntegrityStore
from faceward.vision.embed import from_template

log = logging.getLogger(__name__)

MAX_PROBLEMS = 200
"""Problems listed in a report; the counts in ``checks`` are always complete."""
DESCRIPTOR_DIM = 128  # dlib's; a gallery of another model records its size in settings["embedding_size"]


@dataclass
class DoctorReport:
    ok: bool
    checks: dict[str, dict[str, Any]]
    problems: list[dict[str, Any]]
    repairs: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": self.checks, "problems": self.problems, "repairs": self.repairs}


class _Findings:
    def __init__(self) -> None:
        self.checks: dict[str, dict[str, Any]] = {
            "tenants": {"checked": 0, "shredded": 0, "key_unopenable": 0, "shredded_with_rows": 0},
            "faces": {"checked": 0, "orphans": 0, "duplicates": 0},
            "subject_keys": {"checked": 0, "unopenable": 0},
            "templates": {"checked": 0, "unopenable": 0, "invalid": 0, "other_model": 0},
            "erasures": {"ledger_entries": 0, "ledger_ok": True, "still_present": 0, "missing_from_ledger": 0},
            "index": {"source": "none", "tenants": 0, "faces": 0, "missing": 0, "erased_or_unknown": 0, "vector_mismatch": 0},
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
        self.bad_snapshots: set[str] = set()

    def add(self, check: str, problem: str, tenant_id: str | None, message: str, **ids: Any) -> None:
        self.count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append({"check": check, "problem": problem, "tenant_id": tenant_id, "message": message, **ids})


def snapshot_path(folder: Path, tenant_id: str) -> Path:
    """Where a tenant's index snapshot lives in ``folder``; named by a hash, never by the tenant id itself."""
    return Path(folder) / f"index-{hashlib.sha256(tenant_id.encode()).hexdigest()[:24]}.snap"


def index_items(index: VectorIndex) -> tuple[np.ndarray, np.ndarray | None]:
    """``(labels, vectors)`` an index holds; vectors are None where the index cannot hand them back."""
    items = getattr(index, "items", None)
    if callable(items):
        labels, vectors = items()
        return np.asarray(labels, dtype=np.int64), np.asarray(vectors, dtype=np.float32)
    from faceward.index.exact import ExactIndex

    if isinstance(index, ExactIndex):
        # ExactIndex has no export method; its live rows are those with a label >= 0 (as in index.snapshot).
        size = index._size
        live = np.nonzero(index._labels[:size] >= 0)[0]
        return index._labels[live].astype(np.int64), index._vectors[live]
    return np.zeros(0, dtype=np.int64), None


# -- doctor -----------------------------------------------------------------------------------


def doctor(
    gallery: GalleryService,
    *,
    repair: bool = False,
    running_index: bool = True,
    snapshots: Path | None = None,
) -> DoctorReport:
    """Check the store, the erasure ledger and the indexes; with ``repair``, fix what can be fixed and check again.

    ``running_index`` checks the indexes this process holds (a server's); an
    index it has not loaded yet is built from the store when first searched, so
    there is nothing to check. ``snapshots`` is a folder of index snapshots
    (:func:`snapshot_path`) to check against the store.
    """
    findings = _examine(gallery, running_index=running_index, snapshots=snapshots)
    repairs: list[dict[str, Any]] = []
    if repair and findings.count:
        repairs = _repair(gallery, findings, snapshots)
        findings = _examine(gallery, running_index=running_index, snapshots=snapshots)
    return DoctorReport(findings.count == 0, findings.checks, findings.problems, repairs)


def _examine(gallery: GalleryService, *, running_index: bool, snapshots: Path | None) -> _Findings:
    found = _Findings()
    store = gallery.store
    integrity = IntegrityStore(store)
    entries = []
    try:
        entries = gallery.ledger.entries()
    except LedgerError as exc:
        found.checks["erasures"]["ledger_ok"] = False
        found.add("erasures", "ledger_broken", None, exc.message)
    found.checks["erasures"]["ledger_entries"] = len(entries)
    erased_subjects = gallery.ledger.erased_subjects(entries)
    erased_tenants = gallery.ledger.erased_tenants(entries)
    ledger_pairs = erased_subjects
    loaded = set(gallery.indexes.loaded()) if running_index else set()
    engine = gallery.settings.index_backend is IndexBackend.MILVUS
    index_source = [s for s, on in (("running", running_index and bool(loaded)), ("snapshots", snapshots is not None),
                                    ("engine", engine)) if on]
    found.checks["index"]["source"] = "+".join(index_source) or "none"

    for tenant in store.list_tenants():
        tenant_id = tenant.id
        found.checks["tenants"]["checked"] += 1
        if tenant.wrapped_key is None:
            found.checks["tenants"]["shredded"] += 1
            if integrity.tenant_rows(tenant_id):
                found.checks["tenants"]["shredded_with_rows"] += 1
                found.add("tenants", "shredded_with_rows", tenant_id, "a shredded tenant still has subjects or faces")
            if tenant_id not in erased_tenants:
                found.checks["erasures"]["missing_from_ledger"] += 1
                found.missing_from_ledger.append((tenant_id, None, tenant.created_at))
                found.add("erasures", "missing_from_ledger", tenant_id, "a shredded tenant is not in the erasure ledger")
            continue
        if tenant_id in erased_tenants:
            found.checks["erasures"]["still_present"] += 1
            found.tenants_still_present.append(tenant_id)
            found.add("erasures", "tenant_still_present", tenant_id, "the ledger lists this tenant as erased, yet it is stored")
            continue
        try:
            tenant_key = gallery.vault.tenant_key(tenant_id)
        except SealError:
            found.checks["tenants"]["key_unopenable"] += 1
            found.add("tenants", "key_unopenable", tenant_id, "the tenant key does not open under this master key")
            continue
        _check_erasures(gallery, integrity, tenant_id, ledger_pairs, found)
        subject_keys = _check_subject_keys(gallery.vault, tenant_id, integrity, found)
        live = _check_faces(tenant_id, tenant.settings, gallery, integrity, subject_keys, found)
        if tenant_id in loaded:
            _check_running_index(gallery, tenant_id, live, found)
        if engine:
            _check_engine(gallery, tenant_id, live, found)
        if snapshots is not None:
            _check_snapshot(snapshots, tenant_id, tenant_key, live, found)
    return found


def _check_erasures(
    gallery: GalleryService, integrity: IntegrityStore, tenant_id: str, ledger_pairs: set[tuple[str, str]], found: _Findings
) -> None:
    listed = sorted(s for t, s in ledger_pairs if t == tenant_id)
    for subject_id in sorted(integrity.present_subjects(tenant_id, listed)):
        found.checks["erasures"]["still_present"] += 1
        found.still_present.append((tenant_id, subject_id))
        found.add("erasures", "subject_still_present", tenant_id, "the ledger lists this subject as erased, yet it is stored",
                  subject_id=subject_id)
    for seq, subject_id in gallery.store.erasures_since(tenant_id, 0):
        if (tenant_id, subject_id) not in ledger_pairs:
            found.checks["erasures"]["missing_from_ledger"] += 1
            found.missing_from_ledger.append((tenant_id, subject_id, gallery.clock()))
            found.add("erasures", "missing_from_ledger", tenant_id, "an erasure the store recorded is not in the ledger",
                      subject_id=subject_id, seq=seq)


def _check_subject_keys(
    vault: TenantVault, tenant_id: str, integrity: IntegrityStore, found: _Findings
) -> dict[str, SubjectKeyRef | None]:
    keys: dict[str, SubjectKeyRef | None] = {}
    for batch in integrity.subject_keys(tenant_id):
        for subject_id, wrapped in batch:
            found.checks["subject_keys"]["checked"] += 1
            ref = SubjectKeyRef(tenant_id, subject_id, wrapped)
            keys[subject_id] = ref if vault.subject_key_opens(ref) else None
            if keys[subject_id] is None:
                found.checks["subject_keys"]["unopenable"] += 1
                found.add("subject_keys", "unopenable", tenant_id, "the subject key does not open", subject_id=subject_id)
    return keys


def _check_faces(
    tenant_id: str, settings: dict[str, Any], gallery: GalleryService, integrity: IntegrityStore,
    subject_keys: dict[str, SubjectKeyRef | None], found: _Findings,
) -> dict[int, tuple[str, np.ndarray | None]]:
    """Every face opened; returns ``seq -> (face id, template or None)`` of the faces an index must hold:
    those of a subject, of the gallery's model.

    Templates of another model (a migration in progress keeps the new model's beside the old) are
    opened and counted, never searched, so no index should hold them.
    """
    model_id = settings.get("model_id")
    dim = int(settings.get("embedding_size", DESCRIPTOR_DIM)) if model_id else None
    orphans = integrity.orphan_faces(tenant_id)
    if orphans:
        found.checks["faces"]["orphans"] += len(orphans)
        found.orphans[tenant_id] = orphans
        for face_id in orphans:
            found.add("faces", "orphan", tenant_id, "a face whose subject is missing", face_id=face_id)
    for subject_id, digest, model, count in integrity.duplicate_faces(tenant_id):
        found.checks["faces"]["duplicates"] += count - 1
        found.duplicates.setdefault(tenant_id, []).append((subject_id, digest, model))
        found.add("faces", "duplicate", tenant_id, f"one image enrolled {count} times for one subject", subject_id=subject_id)
    orphan_set = set(orphans)
    live: dict[int, tuple[str, np.ndarray | None]] = {}
    after = 0
    while True:
        batch = gallery.store.faces_since(tenant_id, after, limit=2000)
        if not batch:
            return live
        for face in batch:
            found.checks["faces"]["checked"] += 1
            if face.id in orphan_set:
                continue
            ours = not model_id or face.model_id == model_id
            if not ours:
                found.checks["templates"]["other_model"] += 1
            vector: np.ndarray | None = None
            key = subject_keys.get(face.subject_id)
            if key is not None:
                found.checks["templates"]["checked"] += 1
                try:
                    vector = from_template(gallery.vault.open_template(key, face.id, face.template_sealed))
                except SealError:
                    found.checks["templates"]["unopenable"] += 1
                    found.add("templates", "unopenable", tenant_id, "a sealed template does not open", face_id=face.id)
                except ValueError:
                    found.checks["templates"]["invalid"] += 1
                    found.add("templates", "invalid", tenant_id, "a template is not a descriptor", face_id=face.id)
                else:
                    size = dim if ours and dim else len(vector)
                    if len(vector) != size or not (np.isfinite(vector).all() and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3):
                        found.checks["templates"]["invalid"] += 1
                        found.add("templates", "invalid", tenant_id, f"a template is not a finite {size}-d unit vector",
                                  face_id=face.id)
                        vector = None
            if ours:
                live[face.seq] = (face.id, vector)
        after = batch[-1].seq


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


def _check_snapshot(folder: Path, tenant_id: str, tenant_key: bytes, live: dict[int, tuple[str, np.ndarray | None]], found: _Findings) -> None:
    from faceward.index.snapshot import SnapshotError, load_snapshot

    path = snapshot_path(folder, tenant_id)
    try:
        loaded = load_snapshot(path, tenant_key, tenant_id)
    except SnapshotError as exc:
        found.bad_snapshots.add(tenant_id)
        found.add("index", "snapshot_unreadable", tenant_id, str(exc))
        return
    if loaded is None:
        return
    index, last_seq = loaded
    labels, vectors = index_items(index)
    if not _compare("snapshot", tenant_id, labels, vectors, last_seq, live, found):
        found.bad_snapshots.add(tenant_id)


# -- repair -----------------------------------------------------------------------------------


def _repair(gallery: GalleryService, found: _Findings, snapshots: Path | None) -> list[dict[str, Any]]:
    done: list[dict[str, Any]] = []
    store = gallery.store
    integrity = IntegrityStore(store)
    for tenant_id, subject_id, at in found.missing_from_ledger:
        if subject_id is None:
            gallery.ledger.record_tenant(tenant_id, at=at)
        else:
            gallery.ledger.record_subject(tenant_id, subject_id, at=at)
        done.append({"repair": "ledger_entry_added", "tenant_id": tenant_id, "subject_id": subject_id})
    for tenant_id, subject_id in found.still_present:
        try:
            store.delete_subject(tenant_id, subject_id, at=gallery.clock())
        except NotFound:
            pass
        gallery.indexes.forget_subject(tenant_id, subject_id)
        done.append({"repair": "erasure_finished", "tenant_id": tenant_id, "subject_id": subject_id})
    for tenant_id in found.tenants_still_present:
        store.update_tenant(tenant_id, wrapped_key=None, status="deleted")
        store.delete_tenant(tenant_id)
        gallery.indexes.erase_tenant(tenant_id)
        done.append({"repair": "tenant_erasure_finished", "tenant_id": tenant_id})
    rebuild = set(found.bad_indexes)
    for tenant_id, face_ids in found.orphans.items():
        removed = integrity.delete_faces(tenant_id, face_ids)
        rebuild.add(tenant_id)
        done.append({"repair": "orphans_removed", "tenant_id": tenant_id, "faces": removed})
    for tenant_id, triples in found.duplicates.items():
        removed = 0
        for subject_id, digest, model in triples:
            removed += integrity.delete_faces(tenant_id, integrity.face_ids_of_duplicates(tenant_id, subject_id, digest, model)[1:])
        rebuild.add(tenant_id)
        done.append({"repair": "duplicates_removed", "tenant_id": tenant_id, "faces": removed})
    gallery.vault.forget()
    for tenant_id in sorted(found.bad_engines):
        gallery.indexes.erase_tenant(tenant_id)  # the store's sealed originals are the truth: rebuild from them
        rebuild.add(tenant_id)
        done.append({"repair": "engine_rebuilt", "tenant_id": tenant_id})
    for tenant_id in sorted(rebuild):
        gallery.indexes.drop_tenant(tenant_id)
        try:
            gallery.indexes.get(tenant_id)
        except (SealError, ValueError) as exc:  # a template that does not open: the index is rebuilt on first search
            done.append({"repair": "index_rebuild_failed", "tenant_id": tenant_id, "reason": str(exc)})
            continue
        done.append({"repair": "index_rebuilt", "tenant_id": tenant_id, "source": "store"})
    if snapshots is not None:
        for tenant_id in sorted(found.bad_snapshots | (rebuild & _snapshotted(snapshots, rebuild))):
            try:
                rewrite_snapshot(gallery, tenant_id, snapshots)
            except (SealError, ValueError) as exc:
                done.append({"repair": "snapshot_rewrite_failed", "tenant_id": tenant_id, "reason": str(exc)})
                continue
            done.append({"repair": "snapshot_rewritten", "tenant_id": tenant_id, "source": "store"})
    return done


def _snapshotted(folder: Path, tenants: set[str]) -> set[str]:
    return {t for t in tenants if snapshot_path(folder, t).exists()}


def rewrite_snapshot(gallery: GalleryService, tenant_id: str, folder: Path) -> Path:
    """Rebuild the tenant's index from the store and save it as its snapshot in ``folder``."""
    from faceward.index.snapshot import save_snapshot
    from faceward.index.tenants import SearchIndexes

    fresh = SearchIndexes(gallery.store, gallery.templates.open, None)
    seq, _, index = fresh.inspect(tenant_id, lambda ix: ix)
    path = snapshot_path(folder, tenant_id)
    save_snapshot(index, path, gallery.vault.tenant_key(tenant_id), tenant_id, seq)
    return path


def reconcile_ledger(gallery: GalleryService) -> int:
    """Append to the ledger every erasure the store recorded that it lacks (and shredded tenants); returns how many.

    ``faceward backup`` runs this first, so that a worker whose erasures went to
    another ledger file cannot leave a gap that a restore would reopen.
    """
    entries = gallery.ledger.entries()
    subjects = gallery.ledger.erased_subjects(entries)
    tenants = gallery.ledger.erased_tenants(entries)
    added = 0
    for tenant in gallery.store.list_tenants():
        if tenant.wrapped_key is None:
            if tenant.id not in tenants:
                gallery.ledger.record_tenant(tenant.id)
                added += 1
            continue
        for _, subject_id in gallery.store.erasures_since(tenant.id, 0):
            if (tenant.id, subject_id) not in subjects:
                gallery.ledger.record_subject(tenant.id, subject_id)
                subjects.add((tenant.id, subject_id))
                added += 1
    return added


__all__ = ["DoctorReport", "doctor", "index_items", "reconcile_ledger", "rewrite_snapshot", "snapshot_path"]
