"""Gallery use cases on real stores and the real engine: consent, sealing, erasure, search, verify."""

from __future__ import annotations

import base64
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from faceward.errors import InvalidInput, NotFound
from faceward.security.crypto import Keyring
from faceward.services.consent import Consent, ConsentError
from faceward.services.gallery import GalleryService, ModelMismatch
from faceward.settings import Settings
from faceward.store import SqlStore
from faceward.vision import FaceEngine, LowQualityFace, NoFaceFound
from faceward.vision.errors import ImageError

NOW = datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine()


@pytest.fixture()
def service(db_url: str, tmp_path: Path, engine: FaceEngine) -> GalleryService:
    settings = Settings(home=tmp_path)
    return GalleryService(SqlStore.open(db_url), Keyring(os.urandom(32)), settings, engine=engine)


def consent(**kw: object) -> Consent:
    values = {"basis": "explicit_consent", "reference": "form-17", "given_at": NOW - timedelta(days=1), "expires_at": None}
    values.update(kw)
    return Consent.build(now=NOW, **values)  # type: ignore[arg-type]


def blank_jpeg() -> bytes:
    from tests.conftest import jpeg

    return jpeg(np.full((200, 200, 3), 120, dtype=np.uint8))


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"basis": "because"}, "not one of"),
        ({"reference": "  "}, "reference"),
        ({"given_at": NOW + timedelta(days=2)}, "future"),
        ({"expires_at": NOW - timedelta(days=3)}, "expire after"),
        ({"expires_at": NOW - timedelta(hours=1), "given_at": NOW - timedelta(days=3)}, "already expired"),
    ],
)
def test_consent_is_validated(kw: dict[str, object], words: str) -> None:
    with pytest.raises(ConsentError, match=words):
        consent(**kw)


def test_enroll_search_verify_and_erase(service: GalleryService, astronaut_jpeg: bytes, astronaut_probe: bytes) -> None:
    tenant = service.create_tenant("Org A")
    eileen = service.create_subject(tenant, "Eileen Collins", consent())
    face = service.enroll(tenant, eileen.id, astronaut_jpeg)
    assert face.quality["face_px"] > 60 and not face.duplicate
    assert service.enroll(tenant, eileen.id, astronaut_jpeg).duplicate  # same bytes twice: stored once
    assert len(service.get_subject(tenant, eileen.id).faces) == 1

    result = service.search(tenant, astronaut_probe, k=5)
    top = result.candidates[0]
    assert (top.subject_id, top.display_name, top.rank) == (eileen.id, "Eileen Collins", 1)
    assert top.score > 0.9 and top.decision.value == "lead" and top.estimated_fmr < 1e-3
    assert result.as_dict()["candidates"][0]["lead_only"] is True

    verdict = service.verify_subject(tenant, astronaut_probe, eileen.id)
    assert verdict.decision.value == "lead" and verdict.compared_faces == 1
    assert service.verify_images(tenant, astronaut_jpeg, astronaut_probe).score > 0.9

    assert service.delete_subject(tenant, eileen.id) == [face.id]
    assert service.search(tenant, astronaut_probe).candidates == []
    with pytest.raises(NotFound):
        service.get_subject(tenant, eileen.id)


def test_other_tenants_see_nothing(service: GalleryService, astronaut_jpeg: bytes, astronaut_probe: bytes) -> None:
    a = service.create_tenant("Org A")
    b = service.create_tenant("Org B")
    subject = service.create_subject(a, "Eileen Collins", consent())
    service.enroll(a, subject.id, astronaut_jpeg)
    assert service.search(b, astronaut_probe).candidates == []
    for call in (
        lambda: service.get_subject(b, subject.id),
        lambda: service.enroll(b, subject.id, astronaut_jpeg),
        lambda: service.verify_subject(b, astronaut_probe, subject.id),
        lambda: service.delete_subject(b, subject.id),
    ):
        with pytest.raises(NotFound, match="no such subject"):
            call()
    assert service.list_subjects(b) == []


def test_bad_images_change_nothing(service: GalleryService) -> None:
    tenant = service.create_tenant("Org A")
    subject = service.create_subject(tenant, "Nobody", consent())
    for data in (b"", b"not an image", b"GIF89a....", blank_jpeg()):
        with pytest.raises((ImageError, NoFaceFound)):
            service.enroll(tenant, subject.id, data)
    assert service.store.count_faces(tenant) == 0


def test_low_quality_refused_with_reasons(service: GalleryService, astronaut: np.ndarray) -> None:
    from tests.conftest import jpeg

    tenant = service.create_tenant("Org A")
    subject = service.create_subject(tenant, "Eileen Collins", consent())
    small = np.ascontiguousarray(astronaut[::3, ::3])  # face about 35 px wide
    with pytest.raises((LowQualityFace, NoFaceFound)):
        service.enroll(tenant, subject.id, jpeg(small))
    assert service.store.count_faces(tenant) == 0


def test_expired_consent_blocks_enrollment(service: GalleryService, astronaut_jpeg: bytes) -> None:
    tenant = service.create_tenant("Org A")
    subject = service.create_subject(tenant, "Eileen", consent(expires_at=NOW + timedelta(seconds=1)))
    service.clock = lambda: NOW + timedelta(days=1)
    with pytest.raises(InvalidInput, match="expired"):
        service.enroll(tenant, subject.id, astronaut_jpeg)


def test_sealed_at_rest(service: GalleryService, astronaut_jpeg: bytes) -> None:
    tenant = service.create_tenant("Acme Investigations Ltd")
    subject = service.create_subject(tenant, "Eileen Collins", consent(reference="consent-form-4711"))
    service.enroll(tenant, subject.id, astronaut_jpeg)
    rows = service.store.faces_since(tenant, 0)
    record = service.store.get_subject(tenant, subject.id)
    blobs = [rows[0].template_sealed, record.display_name_sealed, record.consent_reference_sealed, service.store.get_tenant(tenant).name_sealed]
    for blob in blobs:
        assert b"Eileen" not in blob and b"Acme" not in blob and b"4711" not in blob


def test_gallery_never_mixes_models(service: GalleryService, astronaut_jpeg: bytes) -> None:
    tenant = service.create_tenant("Org A")
    subject = service.create_subject(tenant, "Eileen", consent())
    service.enroll(tenant, subject.id, astronaut_jpeg)
    service.store.update_tenant(tenant, settings={"model_id": "another-model"})
    with pytest.raises(ModelMismatch):
        service.search(tenant, astronaut_jpeg)


def test_wrong_master_key_cannot_open(service: GalleryService) -> None:
    tenant = service.create_tenant("Org A")
    other = GalleryService(service.store, Keyring(base64.b64decode(base64.b64encode(os.urandom(32)))), service.settings, engine=service.engine)
    from faceward.security.errors import SealError

    with pytest.raises(SealError):
        other.tenant_name(service.store.get_tenant(tenant))
