"""Keeping the store honest: ``faceward doctor`` checks and repairs (the retention purge is :mod:`faceward.services.retention`).

:func:`doctor` checks, for every tenant whose key still exists:

* **faces** - no face lacks its subject (orphans) and no image is enrolled twice for one subject;
* **subject_keys** - every subject's wrapped key opens under its tenant key;
* **templates** - every sealed template opens under its subject key and is a finite unit vector
  of the tenant's model;
* **erasures** - the erasure ledger's hash chain holds, no subject or tenant it lists is still
  stored, and every erasure the store recorded is in the ledger;
* **reviews** - no review step is still stored in clear (steps from before revision 0006), and
  none remains of a subject the store recorded as erased (the ledger names no one to look up);
* **index** - with a running index (the server's :class:`GalleryService`) or a persistent engine (Milvus: every tenant's collection, protected templates turned back with
  the tenant's transform), the index holds exactly the stored faces: none missing, none erased,
  the same vectors.

``repair=True`` then rebuilds every checked index from the store (the store is the
truth), seals review steps still in clear, finishes erasures the ledger lists, copies the store's erasures into the
ledger, and removes orphaned and duplicated faces; it never touches a template
that fails to open (that is a key problem for a person to look at). The report
is the state *after* the repairs, with what was done in ``repairs``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from faceward.security.errors import SealError
from faceward.security.vault import SubjectKeyRef, TenantVault
from faceward.services.gallery import GalleryService
from faceward.services.reviews import ReviewService
from faceward.store.ledger import Erased, Erasure, LedgerError
from faceward.errors import NotFound
from faceward.settings import IndexBackend
from faceward.services.doctor_index import _Findings, _check_engine, _check_running_index, index_items
from faceward.store.integrity import IntegrityStore
from faceward.store.profile import TenantProfile
from faceward.vision.embed import from_template

log = logging.getLogger(__name__)

DESCRIPTOR_DIM = 128  # dlib's; a gallery of another model records its size in settings["embedding_size"]


@dataclass
class DoctorReport:
    ok: bool
    checks: dict[str, dict[str, Any]]
    problems: list[dict[str, Any]]
    repairs: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": self.checks, "problems": self.problems, "repairs": self.repairs}




# -- doctor -----------------------------------------------------------------------------------


def doctor(
    gallery: GalleryService,
    *,
    repair: bool = False,
    running_index: bool = True,
) -> DoctorReport:
    """Check the store, the erasure ledger and the indexes; with ``repair``, fix what can be fixed and check again.

    ``running_index`` checks the indexes this process holds (a server's); an
    index it has not loaded yet is built from the store when first searched, so
    there is nothing to check (no index is kept on disk: decision 026).
    """
    findings = _examine(gallery, running_index=running_index)
    repairs: list[dict[str, Any]] = []
    if repair and findings.count:
        repairs = _repair(gallery, findings)
        findings = _examine(gallery, running_index=running_index)
    return DoctorReport(findings.count == 0, findings.checks, findings.problems, repairs)


def _examine(gallery: GalleryService, *, running_index: bool) -> _Findings:
    found = _Findings()
    store = gallery.store
    integrity = IntegrityStore(store)
    entries: list[Erasure] = []
    erased = Erased(None, {}, set())
    try:
        entries = gallery.ledger.entries()
        erased = gallery.ledger.erased(entries)  # keyed hashes: the store's ids are hashed and looked up
    except LedgerError as exc:
        found.checks["erasures"]["ledger_ok"] = False
        found.add("erasures", "ledger_broken", None, exc.message)
    found.checks["erasures"]["ledger_entries"] = len(entries)
    loaded = set(gallery.indexes.loaded()) if running_index else set()
    engine = gallery.settings.index_backend is IndexBackend.MILVUS
    index_source = [s for s, on in (("running", running_index and bool(loaded)), ("engine", engine)) if on]
    found.checks["index"]["source"] = "+".join(index_source) or "none"

    for tenant in store.list_tenants():
        tenant_id = tenant.id
        found.checks["tenants"]["checked"] += 1
        if tenant.wrapped_key is None:
            found.checks["tenants"]["shredded"] += 1
            if integrity.tenant_rows(tenant_id):
                found.checks["tenants"]["shredded_with_rows"] += 1
                found.add("tenants", "shredded_with_rows", tenant_id, "a shredded tenant still has subjects or faces")
            if not erased.tenant(tenant_id):
                found.checks["erasures"]["missing_from_ledger"] += 1
                found.missing_from_ledger.append((tenant_id, None, tenant.created_at))
                found.add("erasures", "missing_from_ledger", tenant_id, "a shredded tenant is not in the erasure ledger")
            continue
        if erased.tenant(tenant_id):
            found.checks["erasures"]["still_present"] += 1
            found.tenants_still_present.append(tenant_id)
            found.add("erasures", "tenant_still_present", tenant_id, "the ledger lists this tenant as erased, yet it is stored")
            continue
        if not gallery.vault.tenant_key_opens(tenant_id):
            found.checks["tenants"]["key_unopenable"] += 1
            found.add("tenants", "key_unopenable", tenant_id, "the tenant key does not open under this master key")
            continue
        erased_ids = _check_erasures(gallery, integrity, tenant_id, erased, found)
        if left := ReviewService(gallery).steps_of_erased(tenant_id, erased_ids):
            found.checks["reviews"]["of_erased_subjects"] += left
            found.erased_reviews[tenant_id] = erased_ids
            found.add("reviews", "of_erased_subjects", tenant_id, f"{left} review steps of erased subjects remain")
        if clear := ReviewService(gallery).clear_step_count(tenant_id):
            found.checks["reviews"]["in_clear"] += clear
            found.clear_reviews.add(tenant_id)
            found.add("reviews", "in_clear", tenant_id, f"{clear} review steps are stored in clear (from before revision 0006)")
        subject_keys = _check_subject_keys(gallery.vault, tenant_id, integrity, found)
        live = _check_faces(tenant_id, tenant.profile, gallery, integrity, subject_keys, found)
        if tenant_id in loaded:
            _check_running_index(gallery, tenant_id, live, found)
        if engine:
            _check_engine(gallery, tenant_id, live, found)
    return found


def _check_erasures(
    gallery: GalleryService, integrity: IntegrityStore, tenant_id: str, erased: Erased, found: _Findings
) -> list[str]:
    """Subjects the ledger lists that are stored, and erasures the store recorded that it lacks; returns the
    subjects the store recorded as erased (their review steps must be gone too)."""
    for subject_id in (s for batch in integrity.subject_ids(tenant_id) for s in batch if erased.subject(tenant_id, s)):
        found.checks["erasures"]["still_present"] += 1
        found.still_present.append((tenant_id, subject_id))
        found.add("erasures", "subject_still_present", tenant_id, "the ledger lists this subject as erased, yet it is stored",
                  subject_id=subject_id)
    recorded = gallery.store.erasures_since(tenant_id, 0)
    for seq, subject_id in recorded:
        if erased.subject(tenant_id, subject_id) is None:
            found.checks["erasures"]["missing_from_ledger"] += 1
            found.missing_from_ledger.append((tenant_id, subject_id, gallery.clock()))
            found.add("erasures", "missing_from_ledger", tenant_id, "an erasure the store recorded is not in the ledger",
                      subject_id=subject_id, seq=seq)
    return sorted({subject_id for _, subject_id in recorded})


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
    tenant_id: str, profile: TenantProfile, gallery: GalleryService, integrity: IntegrityStore,
    subject_keys: dict[str, SubjectKeyRef | None], found: _Findings,
) -> dict[int, tuple[str, np.ndarray | None]]:
    """Every face opened; returns ``seq -> (face id, template or None)`` of the faces an index must hold:
    those of a subject, of the gallery's model.

    Templates of another model (a migration in progress keeps the new model's beside the old) are
    opened and counted, never searched, so no index should hold them.
    """
    model_id = profile.model_id
    dim = profile.embedding_size(DESCRIPTOR_DIM) if model_id else None
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


# -- repair -----------------------------------------------------------------------------------


def _repair(gallery: GalleryService, found: _Findings) -> list[dict[str, Any]]:
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
            store.delete_subject(tenant_id, subject_id, at=gallery.clock(),
                                 review_ref=gallery.vault.review_subject_ref(tenant_id, subject_id))
        except NotFound:
            pass
        gallery.indexes.forget_subject(tenant_id, subject_id)
        done.append({"repair": "erasure_finished", "tenant_id": tenant_id, "subject_id": subject_id})
    for tenant_id in found.tenants_still_present:
        store.update_tenant(tenant_id, wrapped_key=None, status="deleted")
        store.delete_tenant(tenant_id)
        gallery.indexes.erase_tenant(tenant_id)
        done.append({"repair": "tenant_erasure_finished", "tenant_id": tenant_id})
    for tenant_id, erased_ids in sorted(found.erased_reviews.items()):
        done.append({"repair": "reviews_of_erased_removed", "tenant_id": tenant_id,
                     "steps": ReviewService(gallery).forget_erased(tenant_id, erased_ids)})
    for tenant_id in sorted(found.clear_reviews):
        done.append({"repair": "reviews_sealed", "tenant_id": tenant_id, "steps": ReviewService(gallery).seal_clear_steps(tenant_id)})
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
    return done


def reconcile_ledger(gallery: GalleryService) -> int:
    """Append to the ledger every erasure the store recorded that it lacks (and shredded tenants); returns how many.

    ``faceward backup`` runs this first, so that a worker whose erasures went to
    another ledger file cannot leave a gap that a restore would reopen.
    """
    erased = gallery.ledger.erased()
    added = 0
    for tenant in gallery.store.list_tenants():
        if tenant.wrapped_key is None:
            if not erased.tenant(tenant.id):
                gallery.ledger.record_tenant(tenant.id)
                added += 1
            continue
        recorded: set[str] = set()
        for _, subject_id in gallery.store.erasures_since(tenant.id, 0):
            if subject_id not in recorded and erased.subject(tenant.id, subject_id) is None:
                gallery.ledger.record_subject(tenant.id, subject_id)
                added += 1
            recorded.add(subject_id)
    return added


__all__ = ["DoctorReport", "doctor", "index_items", "reconcile_ledger"]
