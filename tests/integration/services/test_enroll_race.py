"""The same photo enrolled concurrently for one subject (a client retrying after a time-out, two workers) is stored once. Both stores."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from faceward.security.crypto import Keyring
from faceward.services.consent import Consent
from faceward.services.gallery import FaceView, GalleryService, utcnow
from faceward.services.doctor import doctor
from faceward.settings import Settings
from faceward.store import SqlStore, schema
from faceward.vision.types import Quality

GOOD = Quality(face_px=120, sharpness=80.0, detector_score=1.0, frontalness=0.95)


@pytest.fixture()
def workers(db_url: str, tmp_path: Path) -> Iterator[list[GalleryService]]:
    """Two services (as two workers would be) on one store: their own connections, one key."""
    keyring = Keyring(os.urandom(32))
    engine = SimpleNamespace(template_id="dlib-resnet-v1/flip", embedding_size=128, manifest=None)
    services = [GalleryService(SqlStore.open(db_url), keyring, Settings(home=tmp_path), engine=engine) for _ in range(2)]
    yield services
    for service in services:
        service.store.close()


def test_concurrent_enrollments_of_one_photo_store_one_face(workers: list[GalleryService]) -> None:
    a, b = workers
    tenant = a.create_tenant("Org")
    subject = a.create_subject(tenant, "Eileen", Consent.build("explicit_consent", "f-1", None, None, now=utcnow())).id
    vector = np.full(128, 1 / np.sqrt(128), dtype=np.float32)
    for trial in range(8):
        digest = f"{trial:064x}"
        barrier = threading.Barrier(4)
        views: list[FaceView] = []

        def enroll(service: GalleryService) -> None:
            barrier.wait()
            views.append(service.admit(tenant, subject, vector, GOOD, {}, digest, 1))

        threads = [threading.Thread(target=enroll, args=(s,)) for s in (a, b, a, b)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        stored = [f for f in a.store.faces_of(tenant, subject) if f.image_sha256 == a.vault.image_digest(tenant, digest)]
        assert len(stored) == 1
        assert len(views) == 4 and {v.id for v in views} == {stored[0].id}  # every caller gets the stored face
        assert sum(not v.duplicate for v in views) == 1
    assert doctor(a).ok


def test_the_stored_image_digest_is_keyed_per_tenant_and_still_dedupes(workers: list[GalleryService]) -> None:
    a, _ = workers
    consent = Consent.build("explicit_consent", "f-1", None, None, now=utcnow())
    vector = np.full(128, 1 / np.sqrt(128), dtype=np.float32)
    digest = "ab" * 32  # a photo's SHA-256
    stored = {}
    for name in ("Org A", "Org B"):
        tenant = a.create_tenant(name)
        subject = a.create_subject(tenant, "Eileen", consent).id
        first = a.admit(tenant, subject, vector, GOOD, {}, digest, 1)
        again = a.admit(tenant, subject, vector, GOOD, {}, digest, 1)
        assert not first.duplicate and again.duplicate and again.id == first.id  # dedupe still works
        assert first.image_sha256 == digest  # the caller is answered with its photo's own SHA-256
        [face] = a.store.faces_of(tenant, subject)
        stored[name] = face.image_sha256
    assert digest not in stored.values() and stored["Org A"] != stored["Org B"]  # nothing links the tenants


def test_faces_stored_with_a_plain_digest_before_it_was_keyed_still_dedupe(workers: list[GalleryService]) -> None:
    a, _ = workers
    tenant = a.create_tenant("Org")
    subject = a.create_subject(tenant, "Eileen", Consent.build("explicit_consent", "f-1", None, None, now=utcnow())).id
    vector = np.full(128, 1 / np.sqrt(128), dtype=np.float32)
    first = a.admit(tenant, subject, vector, GOOD, {}, "cd" * 32, 1)
    with a.store.transaction(tenant) as conn:  # as an older release stored it
        conn.execute(schema.faces.update().where(schema.faces.c.id == first.id).values(image_sha256="cd" * 32))
    assert a.admit(tenant, subject, vector, GOOD, {}, "cd" * 32, 1).id == first.id
