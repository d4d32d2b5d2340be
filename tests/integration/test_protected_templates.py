"""Protected templates in a real Milvus server (decision 016).

The same face enrolled in two tenants lands in Milvus as two unrelated
vectors, neither like the template the store seals; every search score is the
exact backend's; the server's files hold no raw template; erasing a subject
deletes its vectors; ``faceward doctor`` finds and repairs an engine that
disagrees with the store.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faceward.security.crypto import Keyring
from faceward.services.consent import Consent
from faceward.services.gallery import GalleryService
from faceward.services.doctor import doctor
from faceward.settings import IndexBackend, Settings
from faceward.store import SqlStore
from faceward.vision import FaceEngine
from faceward.vision.types import Quality

NOW = datetime.now(timezone.utc)
GOOD = Quality(face_px=200, sharpness=500.0, detector_score=1.0, frontalness=1.0)
BOX = {"left": 0, "top": 0, "right": 200, "bottom": 200}


def consent() -> Consent:
    return Consent.build("explicit_consent", "form-1", NOW - timedelta(days=1), None, now=NOW)


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine()


@pytest.fixture()
def services(tmp_path: Path, engine: FaceEngine, milvus_uri: str) -> Any:
    """One store and keyring seen through two gallery services: Milvus-backed and exact."""
    store, keyring = SqlStore.open(f"sqlite:///{tmp_path / 'fw.db'}"), Keyring(os.urandom(32))
    prefix = f"t{uuid.uuid4().hex[:12]}"
    milvus = GalleryService(store, keyring, Settings(
        home=tmp_path, index_backend=IndexBackend.MILVUS, index_options={"uri": milvus_uri, "prefix": prefix},
    ), engine=engine)
    exact = GalleryService(store, keyring, Settings(home=tmp_path), engine=engine)
    yield milvus, exact
    for tenant in store.list_tenants():
        milvus.indexes.erase_tenant(tenant.id)


def engine_rows(service: GalleryService, tenant_id: str) -> dict[int, np.ndarray]:
    """What the Milvus collection itself holds, label -> stored vector (no transform undone)."""
    inner = service.indexes.get(tenant_id).index.inner
    labels, vectors = inner.items()
    return dict(zip(labels.tolist(), vectors))


def test_same_face_in_two_tenants_is_unlinkable_and_scores_unchanged(
    services: Any, milvus_server: Any, astronaut_jpeg: bytes, astronaut_probe: bytes,
) -> None:
    milvus, exact = services
    others = np.random.default_rng(3).standard_normal((30, 128)).astype(np.float32)
    others /= np.linalg.norm(others, axis=1, keepdims=True)
    tenants, faces = [], {}
    for name in ("acme", "globex"):
        tenant = milvus.create_tenant(name)
        subject = milvus.create_subject(tenant, "Eileen Collins", consent())
        faces[tenant] = milvus.enroll(tenant, subject.id, astronaut_jpeg)
        for i, vector in enumerate(others):  # other people, so a search ranks a real list; the same in both
            other = milvus.create_subject(tenant, f"person {i}", consent())
            milvus.admit(tenant, other.id, vector, GOOD, BOX, hashlib.sha256(f"{name}-{i}".encode()).hexdigest(), 1)
        tenants.append(tenant)

    for tenant in tenants:
        got, want = milvus.search(tenant, astronaut_probe, k=10), exact.search(tenant, astronaut_probe, k=10)
        assert [c.subject_id for c in got.candidates] == [c.subject_id for c in want.candidates]
        np.testing.assert_allclose([c.score for c in got.candidates], [c.score for c in want.candidates], atol=1e-5)
        assert [c.decision for c in got.candidates] == [c.decision for c in want.candidates]
        assert got.candidates[0].score > 0.9

    seq = {t: milvus.store.faces_of(t, faces[t].subject_id)[0].seq for t in tenants}
    plain = {t: dict(zip(*_exact_items(exact, t)))[seq[t]] for t in tenants}
    stored = {t: engine_rows(milvus, t)[seq[t]] for t in tenants}
    np.testing.assert_allclose(plain[tenants[0]], plain[tenants[1]], atol=1e-6)  # one image, one template
    # Unlinkable: the same 31 templates stored by both tenants are no closer than unrelated vectors.
    # For random 128-d directions |cosine| averages 0.07 (sd 0.05), so one pair alone exceeds 0.2
    # about 1 time in 40: the claim is checked on the mean of 31 pairs, each pair bounded at 4.5 sd.
    pairs = _same_template_pairs(exact, milvus, tenants)
    across = np.abs([float(a @ b) for _, a, _, b in pairs])
    to_plain = np.abs([float(a @ p) for p, a, _, _ in pairs] + [float(b @ q) for _, _, q, b in pairs])
    assert len(pairs) == 31
    assert across.mean() < 0.2 and across.max() < 0.4, across  # unlinkable across tenants
    assert to_plain.mean() < 0.2 and to_plain.max() < 0.4, to_plain  # not the template itself
    for t in tenants:
        assert float(np.linalg.norm(stored[t])) == pytest.approx(1.0, abs=1e-5)

    # On disk: the server's files hold the protected rows (the positive control) and no raw template.
    for t in tenants:
        milvus.indexes.get(t).index.flush()
    blobs = b"".join(p.read_bytes() for p in Path(milvus_server.data_dir).rglob("*") if p.is_file() and p.stat().st_size < 1 << 28
                     and "bin" not in p.relative_to(milvus_server.data_dir).parts[:1])
    assert stored[tenants[0]].astype(np.float32).tobytes()[:64] in blobs
    for t in tenants:
        assert plain[t].astype(np.float32).tobytes()[:32] not in blobs


def _same_template_pairs(exact: GalleryService, milvus: GalleryService, tenants: list[str]) -> list[tuple[np.ndarray, ...]]:
    """(plain, stored) of tenant 0 beside (plain, stored) of tenant 1, paired by their identical plaintext."""
    sides = []
    for t in tenants:
        labels, plain = _exact_items(exact, t)
        stored = engine_rows(milvus, t)
        sides.append([(p, stored[int(label)]) for label, p in zip(labels.tolist(), plain)])
    pairs = []
    for p, a in sides[0]:
        q, b = max(sides[1], key=lambda side: float(side[0] @ p))
        if float(q @ p) > 1 - 1e-5:
            pairs.append((p, a, q, b))
    return pairs


def _exact_items(service: GalleryService, tenant_id: str) -> tuple[np.ndarray, np.ndarray]:
    from faceward.services.doctor import index_items

    labels, vectors = index_items(service.indexes.get(tenant_id).index)
    assert vectors is not None
    return labels, vectors


def test_erasure_deletes_vectors_even_where_no_process_had_the_tenant_loaded(
    services: Any, astronaut_jpeg: bytes
) -> None:
    milvus, _ = services
    tenant = milvus.create_tenant("acme")
    kept = milvus.create_subject(tenant, "kept", consent())
    gone = milvus.create_subject(tenant, "gone", consent())
    milvus.enroll(tenant, gone.id, astronaut_jpeg)
    milvus.admit(tenant, kept.id, np.eye(128, dtype=np.float32)[0], GOOD, BOX, hashlib.sha256(b"kept").hexdigest(), 1)
    assert len(engine_rows(milvus, tenant)) == 2
    gone_seq = milvus.store.faces_of(tenant, gone.id)[0].seq
    milvus.indexes.drop_tenant(tenant)  # as in a fresh process: nothing loaded
    milvus.delete_subject(tenant, gone.id)
    inner = milvus.indexes.get(tenant).index.inner
    assert gone_seq not in inner.labels().tolist() and len(inner) == 1


def test_doctor_checks_the_engine_against_the_store_and_repairs_it(services: Any, astronaut_jpeg: bytes) -> None:
    milvus, _ = services
    tenant = milvus.create_tenant("acme")
    subject = milvus.create_subject(tenant, "someone", consent())
    milvus.enroll(tenant, subject.id, astronaut_jpeg)
    milvus.indexes.get(tenant)
    assert doctor(milvus).ok
    inner = milvus.indexes.get(tenant).index.inner
    inner.add(np.array([987654321]), np.eye(128, dtype=np.float32)[:1])  # a face the store never had
    seq = milvus.store.faces_of(tenant, subject.id)[0].seq
    inner.add(np.array([seq]), np.eye(128, dtype=np.float32)[1:2])  # a vector unlike the store's
    milvus.indexes.drop_tenant(tenant)  # checked as `faceward doctor` does: from a process with nothing loaded
    report = doctor(milvus, running_index=False)
    assert not report.ok
    problems = {p["problem"] for p in report.problems if p["check"] == "index"}
    assert {"erased_or_unknown", "vector_mismatch"} <= problems
    repaired = doctor(milvus, running_index=False, repair=True)
    assert repaired.ok, repaired.problems
    assert sorted(engine_rows(milvus, tenant)) == [seq]


def _second_replica(first: GalleryService, engine: FaceEngine, photo: bytes) -> tuple[GalleryService, str, Any]:
    """Another `serve` worker over the same store and Milvus (its own client), and a tenant with one enrolled face."""
    second = GalleryService(first.store, first.keyring, first.settings, engine=engine)
    tenant = first.create_tenant("acme")
    subject = first.create_subject(tenant, "Eileen Collins", consent())
    first.enroll(tenant, subject.id, photo)
    return second, tenant, subject


def test_a_subject_erased_through_one_worker_is_gone_from_another_workers_search(
    services: Any, tmp_path: Path, engine: FaceEngine, milvus_uri: str, astronaut_jpeg: bytes, astronaut_probe: bytes,
) -> None:
    # Two `serve` workers: one store, one Milvus, each its own client (Session consistency: a client is
    # sure to see only its own deletes). The other worker learns of the erasure from the store's
    # change sequence before its next search and deletes the rows again through its own client.
    first, _ = services
    second, tenant, subject = _second_replica(first, engine, astronaut_jpeg)
    assert second.search(tenant, astronaut_probe, k=1).candidates[0].subject_id == subject.id  # loaded there
    first.delete_subject(tenant, subject.id)
    assert all(c.subject_id != subject.id for c in second.search(tenant, astronaut_probe, k=5).candidates)
    assert len(second.indexes.get(tenant).index) == 0


def test_renewing_the_transform_moves_every_replica_to_new_rows_and_drops_the_old(
    services: Any, engine: FaceEngine, astronaut_jpeg: bytes, astronaut_probe: bytes,
) -> None:
    # After a suspected copy of the engine, `faceward tenant renew-transform`: the tenant's rows go to a new
    # collection under a new rotation; a replica that holds the old one notices on its next search.
    from faceward.security.audit import AuditLog
    from faceward.services.accounts import AccountService

    first, _ = services
    second, tenant, subject = _second_replica(first, engine, astronaut_jpeg)
    others = np.random.default_rng(5).standard_normal((30, 128)).astype(np.float32)
    for i, vector in enumerate(others / np.linalg.norm(others, axis=1, keepdims=True)):
        other = first.create_subject(tenant, f"person {i}", consent())
        first.admit(tenant, other.id, vector, GOOD, BOX, hashlib.sha256(f"renew-{i}".encode()).hexdigest(), 1)
    before = second.search(tenant, astronaut_probe, k=3)  # the second replica holds generation 0's collection
    old_rows, old_name = engine_rows(second, tenant), second.indexes.get(tenant).index.inner.collection

    accounts = AccountService(first, AuditLog(first.store, first.vault.tenant_key, clock=first.clock))
    assert accounts.renew_transform(tenant) == 1
    client = second.indexes.get(tenant).index.inner._client  # the replica has moved on already: ask its client
    assert not client.has_collection(old_name)  # what a thief may have copied is gone from the engine

    after = second.search(tenant, astronaut_probe, k=3)
    assert [c.subject_id for c in after.candidates] == [c.subject_id for c in before.candidates]
    np.testing.assert_allclose([c.score for c in after.candidates], [c.score for c in before.candidates], atol=1e-5)
    inner = second.indexes.get(tenant).index.inner
    assert inner.collection == old_name + "_g1" and len(inner) == 31
    new_rows = engine_rows(second, tenant)
    assert sorted(new_rows) == sorted(old_rows)
    moved = np.abs([float(old_rows[label] @ new_rows[label]) for label in old_rows])
    assert moved.mean() < 0.2 and moved.max() < 0.5, moved  # the old rows say nothing about the new ones
    assert any(e.action == "gallery.transform.renew" and e.details == {"generation": 1}
               for e in accounts.audit.entries(tenant, limit=1000))
    assert first.search(tenant, astronaut_probe, k=1).candidates[0].subject_id == subject.id  # the renewing process too


def test_a_search_that_read_the_old_generation_before_a_renewal_elsewhere_is_answered_from_the_new_rows(
    services: Any, engine: FaceEngine, astronaut_jpeg: bytes, astronaut_probe: bytes, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The race a renewal leaves: a replica reads generation 0, another process renews and drops that
    # collection, then the replica's search reaches Milvus. It must not fail (a 500 to the client).
    from faceward.security.audit import AuditLog
    from faceward.services.accounts import AccountService

    first, _ = services
    second, tenant, subject = _second_replica(first, engine, astronaut_jpeg)
    before = second.search(tenant, astronaut_probe, k=1)
    current = second.indexes._generation
    assert current is not None
    reads: list[int] = []

    def read_once_before_the_renewal(tenant_id: str) -> int:
        reads.append(0 if not reads else current(tenant_id))
        return reads[-1]

    monkeypatch.setattr(second.indexes, "_generation", read_once_before_the_renewal)
    AccountService(first, AuditLog(first.store, first.vault.tenant_key, clock=first.clock)).renew_transform(tenant)

    after = second.search(tenant, astronaut_probe, k=1)
    assert reads[0] == 0 and reads[-1] == 1  # the search did start on the dropped collection
    assert after.candidates[0].subject_id == subject.id
    assert after.candidates[0].score == pytest.approx(before.candidates[0].score, abs=1e-5)
    assert second.indexes.get(tenant).index.inner.collection.endswith("_g1")


def test_an_engine_failure_that_is_not_a_renewal_is_not_retried(
    services: Any, engine: FaceEngine, astronaut_jpeg: bytes, astronaut_probe: bytes, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from faceward.index.milvus import MilvusError

    first, _ = services
    second, tenant, _ = _second_replica(first, engine, astronaut_jpeg)
    inner = second.indexes.get(tenant).index.inner
    calls: list[int] = []

    def down(*_args: Any, **_kwargs: Any) -> Any:
        calls.append(1)
        raise MilvusError("Milvus search failed: unreachable")

    monkeypatch.setattr(inner, "search", down)
    with pytest.raises(MilvusError):
        second.search(tenant, astronaut_probe, k=1)
    assert len(calls) == 1
