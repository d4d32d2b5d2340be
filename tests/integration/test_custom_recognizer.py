"""A recognizer of your own, end to end: enrollment and search on it, the mixing refusal, the migration.

The model is a tiny ONNX projection the test builds (``tests/unit/vision/tiny_recognizer.py``);
no calibration table ships for it, so scores are decided by its manifest's
threshold and flagged uncalibrated.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faceward.errors import InvalidInput
from faceward.security.crypto import Keyring
from faceward.services.consent import Consent
from faceward.services.gallery import GalleryService, ModelMismatch, Uncalibrated
from faceward.settings import Engine, Settings
from faceward.store import SqlStore
from faceward.vision import FaceEngine, decode_image
from faceward.vision.engine import EngineOptions
from faceward.vision.manifest import load_manifest
from tests.unit.vision.tiny_recognizer import DIM, THRESHOLD, write_recognizer

WHY = ("--purpose", "end-to-end check", "--case-reference", "TEST-1")  # a search states why, as the API's does

NOW = datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def manifest_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_recognizer(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def custom_engine(manifest_path: Path) -> FaceEngine:
    return FaceEngine(EngineOptions(engine=Engine.ONNX, recognizer=str(manifest_path), threads=1))


@pytest.fixture(scope="module")
def dlib_engine() -> FaceEngine:
    return FaceEngine(EngineOptions(engine=Engine.ONNX, threads=1))


@pytest.fixture()
def store(db_url: str) -> SqlStore:
    return SqlStore.open(db_url)


@pytest.fixture()
def keyring() -> Keyring:
    return Keyring(os.urandom(32))


def service_for(store: SqlStore, keyring: Keyring, engine: FaceEngine, home: Path) -> GalleryService:
    return GalleryService(store, keyring, Settings(home=home), engine=engine)


def consent() -> Consent:
    return Consent.build("explicit_consent", "form-17", NOW - timedelta(days=1), None, now=NOW)


def test_enroll_and_search_on_a_custom_model(
    store: SqlStore, keyring: Keyring, custom_engine: FaceEngine, manifest_path: Path, tmp_path: Path,
    astronaut_jpeg: bytes, astronaut_probe: bytes,
) -> None:
    service = service_for(store, keyring, custom_engine, tmp_path)
    model_id = load_manifest(manifest_path).model_id + "/flip"
    tenant = service.create_tenant("Org A")
    eileen = service.create_subject(tenant, "Eileen Collins", consent())
    face = service.enroll(tenant, eileen.id, astronaut_jpeg)
    assert not face.duplicate
    sha = load_manifest(manifest_path).sha256
    assert store.get_tenant(tenant).settings == {"model_id": model_id, "embedding_size": DIM, "model_sha256": sha}
    assert [f["model_id"] for f in service.get_subject(tenant, eileen.id).faces] == [model_id]
    assert [f.model_sha256 for f in store.faces_of(tenant, eileen.id)] == [sha]  # the full hash, per template

    assert isinstance(service.calibration, Uncalibrated)
    result = service.search(tenant, astronaut_probe, k=3)
    [top] = result.candidates
    assert top.subject_id == eileen.id and top.score > THRESHOLD and top.decision.value == "lead"
    assert top.estimated_fmr is None and result.calibrated is False and result.threshold == THRESHOLD
    assert any("uncalibrated" in w for w in result.warnings)
    data = result.as_dict()
    assert data["model_id"] == model_id and data["calibrated"] is False and data["candidates"][0]["estimated_fmr"] is None

    verdict = service.verify_subject(tenant, astronaut_probe, eileen.id)
    assert verdict.estimated_fmr is None and verdict.as_dict()["calibrated"] is False and verdict.warnings
    assert service.gallery_threshold(1000, 0.01) == THRESHOLD


def test_a_gallery_never_mixes_models(
    store: SqlStore, keyring: Keyring, custom_engine: FaceEngine, dlib_engine: FaceEngine, tmp_path: Path,
    astronaut_jpeg: bytes, astronaut_probe: bytes,
) -> None:
    dlib_service = service_for(store, keyring, dlib_engine, tmp_path)
    custom = service_for(store, keyring, custom_engine, tmp_path)
    tenant = dlib_service.create_tenant("Org B")
    subject = dlib_service.create_subject(tenant, "Eileen Collins", consent())
    dlib_service.enroll(tenant, subject.id, astronaut_jpeg)
    for call in (
        lambda: custom.search(tenant, astronaut_probe),
        lambda: custom.enroll(tenant, subject.id, astronaut_probe),
        lambda: custom.verify_subject(tenant, astronaut_probe, subject.id),
        lambda: custom.admit(tenant, subject.id, np.ones(DIM, np.float32) / 8, *_face_args()),
    ):
        with pytest.raises(ModelMismatch, match="faceward reenroll"):
            call()
    # ... and the other way round.
    other = custom.create_tenant("Org C")
    mine = custom.create_subject(other, "Eileen Collins", consent())
    custom.enroll(other, mine.id, astronaut_jpeg)
    with pytest.raises(ModelMismatch):
        dlib_service.search(other, astronaut_probe)
    assert dlib_service.search(tenant, astronaut_probe).candidates[0].estimated_fmr is not None


def _face_args() -> tuple:
    from faceward.vision.types import Quality

    return Quality(100, 50.0, 1.0, 1.0), {"left": 0, "top": 0, "right": 100, "bottom": 100}, "0" * 64, 1


def test_migration_builds_beside_and_switches_in_one_step(
    store: SqlStore, keyring: Keyring, custom_engine: FaceEngine, dlib_engine: FaceEngine, tmp_path: Path,
    astronaut_jpeg: bytes, astronaut_probe: bytes,
) -> None:
    old = service_for(store, keyring, dlib_engine, tmp_path)
    new = service_for(store, keyring, custom_engine, tmp_path)
    tenant = old.create_tenant("Org D")
    eileen = old.create_subject(tenant, "Eileen Collins", consent(), reference="eileen")
    ghost = old.create_subject(tenant, "No Folder", consent(), reference="ghost")
    old.enroll(tenant, eileen.id, astronaut_jpeg)
    old.enroll(tenant, ghost.id, astronaut_probe)
    before = old.search(tenant, astronaut_probe)
    assert before.gallery_size == 2

    with pytest.raises(ModelMismatch, match="no migration"):
        new.admit_migrated(tenant, eileen.id, np.ones(DIM, np.float32) / 8, *_face_args())
    assert new.begin_migration(tenant) == old.model_id
    assert new.begin_migration(tenant) == old.model_id  # resumable
    [face] = custom_engine.analyze(decode_image(astronaut_jpeg))
    assert face.descriptor is not None
    digest = hashlib.sha256(astronaut_jpeg).hexdigest()
    view = new.admit_migrated(tenant, eileen.id, face.descriptor, face.quality, face.box.as_dict(), digest, 1)
    assert not view.duplicate
    assert new.admit_migrated(tenant, eileen.id, face.descriptor, face.quality, face.box.as_dict(), digest, 1).duplicate
    with pytest.raises(InvalidInput, match="never adds photos"):
        new.admit_migrated(tenant, eileen.id, face.descriptor, face.quality, face.box.as_dict(), "f" * 64, 1)
    with pytest.raises(InvalidInput, match="values"):
        new.admit_migrated(tenant, eileen.id, np.ones(128, np.float32), face.quality, face.box.as_dict(), digest, 1)

    # Meanwhile the gallery still searches with the old model only, and not the new templates.
    during = old.search(tenant, astronaut_probe)
    assert during.gallery_size == 2 and during.candidates[0].score == pytest.approx(before.candidates[0].score)
    with pytest.raises(ModelMismatch):
        new.search(tenant, astronaut_probe)

    strict = new.finish_migration(tenant, require_all=True)
    assert not strict.switched and [s["subject_id"] for s in strict.without_new_faces] == [ghost.id]
    assert store.get_tenant(tenant).settings["model_id"] == old.model_id

    report = new.finish_migration(tenant)
    assert report.switched and report.old_model_id == old.model_id and report.new_model_id == new.model_id
    assert (report.subjects, report.subjects_migrated, report.faces_migrated, report.old_faces_removed) == (2, 1, 1, 2)
    assert report.without_new_faces == [{"subject_id": ghost.id, "display_name": "No Folder"}]
    new_sha = new.analysis.model_sha256
    assert store.get_tenant(tenant).settings == {"model_id": new.model_id, "embedding_size": DIM, "model_sha256": new_sha}
    assert {f.model_sha256 for f in store.faces_of(tenant, eileen.id)} == {new_sha} != {old.analysis.model_sha256}
    with pytest.raises(ModelMismatch):
        old.search(tenant, astronaut_probe)
    after = new.search(tenant, astronaut_probe)
    assert after.gallery_size == 1 and after.candidates[0].subject_id == eileen.id
    assert {f.model_id for f in store.faces_of(tenant, eileen.id)} == {new.model_id}
    assert store.faces_of(tenant, ghost.id) == []
    with pytest.raises(InvalidInput, match="already holds"):
        new.begin_migration(tenant)


# -- the CLI --------------------------------------------------------------------------------


def run(*args: str) -> tuple[int, str]:
    from faceward.cli.main import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_reenroll_command_migrates_the_local_gallery(
    home: Path, tmp_path: Path, manifest_path: Path, monkeypatch: pytest.MonkeyPatch,
    astronaut_jpeg: bytes, astronaut_probe: bytes,
) -> None:
    folder = tmp_path / "people"
    (folder / "Eileen_Collins").mkdir(parents=True)
    (folder / "Eileen_Collins" / "a.jpg").write_bytes(astronaut_jpeg)
    (folder / "Mirror_Person").mkdir()
    (folder / "Mirror_Person" / "b.jpg").write_bytes(astronaut_probe)
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(astronaut_probe)
    code, out = run("enroll", str(folder), "--basis", "explicit_consent", "--reference", "form-1", "--workers", "1", "--json")
    assert code == 0, out
    assert json.loads(out)["enrolled"] == 2

    (folder / "Eileen_Collins" / "new-photo.jpg").write_bytes(astronaut_probe)  # never enrolled: must not migrate
    (folder / "Stranger").mkdir()
    code, out = run("reenroll", str(folder), "--model", str(manifest_path), "--workers", "1", "--json")
    assert code == 0, out
    report = json.loads(out)
    model_id = load_manifest(manifest_path).model_id + "/flip"
    assert report["switched"] is True and report["new_model_id"] == model_id
    assert report["old_model_id"] == "dlib-resnet-v1/flip"
    assert (report["migrated"], report["old_faces_removed"], report["not_in_gallery"]) == (2, 2, 1)
    assert report["unknown_folders"] == ["Stranger"] and report["without_new_faces"] == []

    code, out = run("search", str(probe), *WHY, "--json")
    assert code != 0 and "reenroll" in out  # the default engine no longer matches the gallery
    monkeypatch.setenv("FACEWARD_RECOGNIZER_MANIFEST", str(manifest_path))
    code, out = run("search", str(probe), *WHY, "--json")
    assert code == 0, out
    result = json.loads(out)
    assert result["model_id"] == model_id and result["calibrated"] is False
    assert result["candidates"][0]["display_name"] == "Mirror_Person"
    code, out = run("info", "--json")
    assert code == 0, out
    assert json.loads(out)["face_engine"]["template_id"] == model_id

    code, out = run("reenroll", str(folder), "--workers", "1")
    assert code != 0 and "--model" in out


def test_an_admin_migrates_the_gallery_through_the_api(
    manifest_path: Path, tmp_path: Path, astronaut_jpeg: bytes, astronaut_probe: bytes
) -> None:
    """``faceward reenroll`` through the API: a server on the new model, an admin's key, every step audited."""
    from faceward.api.app import create_app
    from faceward.security.permissions import Role
    from tests.integration.api.apiworld import GENEROUS, Api, make_settings, make_tenant

    before = make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'fw.db'}", max_image_bytes=1024 * 1024)
    old_app = create_app(before, limits=GENEROUS)
    old = Api(old_app)
    tenant = make_tenant(old_app.state.services, "Org M")
    subject = old.post("/v1/subjects", headers=tenant.auth(Role.ENROLLER), json={
        "display_name": "Eileen Collins", "consent": {"basis": "explicit_consent", "reference": "FORM-1",
                                                      "given_at": "2026-01-02T03:04:05Z"}}).json()
    photo = {"image": ("a.jpg", astronaut_jpeg, "image/jpeg")}
    assert old.post(f"/v1/subjects/{subject['id']}/faces", headers=tenant.auth(Role.ENROLLER), files=photo).status_code == 201
    old_model = old_app.state.services.gallery.model_id
    old.close()
    old_app.state.services.gallery.store.close()

    app = create_app(before.model_copy(update={"recognizer_manifest": manifest_path}), limits=GENEROUS)
    api, admin = Api(app), tenant.auth(Role.ADMIN)
    try:
        new_model = app.state.services.gallery.model_id
        url = f"/v1/gallery/migration/subjects/{subject['id']}/faces"
        assert api.post("/v1/gallery/migration", headers=tenant.auth(Role.ENROLLER)).status_code == 403
        assert api.post(url, headers=admin, files=photo).json()["error"]["code"] == "model_mismatch"  # not begun
        started = api.post("/v1/gallery/migration", headers=admin)
        assert started.status_code == 200 and started.json() == {"from_model_id": old_model, "to_model_id": new_model}
        assert api.post("/v1/gallery/migration", headers=admin).status_code == 200  # resumable
        first = api.post(url, headers=admin, files=photo)
        assert first.status_code == 201, first.text
        assert api.post(url, headers=admin, files=photo).json()["duplicate"] is True  # a resumed run
        never = api.post(url, headers=admin, files={"image": ("b.jpg", astronaut_probe, "image/jpeg")})
        assert never.json()["error"]["code"] == "not_in_gallery"  # a migration never adds photos
        done = api.post("/v1/gallery/migration/finish", headers=admin, json={"require_all": True})
        assert done.status_code == 200, done.text
        report = done.json()
        assert report["switched"] and (report["old_model_id"], report["new_model_id"]) == (old_model, new_model)
        assert (report["faces_migrated"], report["old_faces_removed"], report["without_new_faces"]) == (1, 1, [])
        stored = app.state.services.gallery.store.faces_of(tenant.id, subject["id"])
        assert [(f.model_id, f.model_sha256) for f in stored] == [(new_model, load_manifest(manifest_path).sha256)]
        actions = [e["action"] for e in api.get("/v1/audit?limit=1000", headers=admin).json()["entries"]]
        assert {"gallery.migrate", "face.migrate", "gallery.switch"} <= set(actions)
        assert actions.count("face.migrate") >= 2  # each photo sent, the repeat included
    finally:
        api.close()
        app.state.services.gallery.store.close()
