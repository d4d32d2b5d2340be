"""The store going away: a full disk and a PostgreSQL restart give clear 503s, and the service
recovers on its own, without a restart, losing nothing it acknowledged."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from faceward.api.app import create_app
from faceward.security.permissions import Role
from faceward.services.operations import Limits
from faceward.settings import Settings
from faceward.vision import FaceEngine
from tests.conftest import jpeg
from tests.integration.api.apiworld import Api

GENEROUS = Limits(requests_per_minute=1_000_000, burst=100_000, searches_per_day=1_000_000)
CONSENT = {"basis": "explicit_consent", "reference": "form-1", "given_at": "2026-01-01T00:00:00Z"}


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine()


def variants(astronaut: np.ndarray, n: int) -> list[bytes]:
    """Distinct photos of one face (different brightness), so each has its own SHA-256."""
    return [jpeg(np.clip(astronaut.astype(np.int16) + i - n // 2, 0, 255).astype(np.uint8)) for i in range(n)]


def open_api(settings: Settings, engine: FaceEngine) -> tuple[Api, dict[str, str], str]:
    app = create_app(settings, engine=engine, limits=GENEROUS)
    services = app.state.services
    tenant_id, _ = services.accounts.create_tenant("Outage Org")
    _, secret = services.accounts.create_key(tenant_id, Role.ENROLLER, "enroller", None, actor="test", source=None)
    api = Api(app)
    headers = {"Authorization": f"Bearer {secret}"}
    subject = api.post("/v1/subjects", json={"display_name": "Eileen", "consent": CONSENT}, headers=headers)
    assert subject.status_code == 201, subject.text
    return api, headers, subject.json()["id"]


def enroll(api: Api, headers: dict[str, str], subject_id: str, image: bytes) -> int:
    files = {"image": ("face.jpg", image, "image/jpeg")}
    return api.post(f"/v1/subjects/{subject_id}/faces", files=files, headers=headers).status_code


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_gives_503_and_recovers(small_disk: Path, engine: FaceEngine, astronaut: np.ndarray, master_key_b64: str) -> None:
    settings = Settings(home=small_disk / "home", master_key=master_key_b64)
    api, headers, subject_id = open_api(settings, engine)
    photos = variants(astronaut, 6)
    assert enroll(api, headers, subject_id, photos[0]) == 201
    filler = small_disk / "filler"
    with filler.open("wb") as handle:  # take every free byte
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    statuses = [enroll(api, headers, subject_id, p) for p in photos[1:4]]
    assert statuses and all(s in (201, 503) for s in statuses), statuses  # a clear 503, never a 500
    assert 503 in statuses
    filler.unlink()
    assert enroll(api, headers, subject_id, photos[4]) == 201  # recovered, no restart
    acknowledged = 2 + statuses.count(201)
    faces = api.get(f"/v1/subjects/{subject_id}", headers=headers).json()["faces"]
    assert len(faces) >= acknowledged  # nothing acknowledged was lost
    api.close()


def pg_cluster(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action], check=True, capture_output=True, timeout=60
    )


def test_postgres_restart_gives_503_then_recovers(pg_url: str, engine: FaceEngine, astronaut: np.ndarray, tmp_path: Path, master_key_b64: str) -> None:
    if not shutil.which("pg_ctlcluster") or not Path("/etc/postgresql").is_dir():
        pytest.skip("pg_ctlcluster is not available to stop and start the local PostgreSQL")
    settings = Settings(home=tmp_path / "home", master_key=master_key_b64, database_url=pg_url)
    api, headers, subject_id = open_api(settings, engine)
    photos = variants(astronaut, 3)
    assert enroll(api, headers, subject_id, photos[0]) == 201
    pg_cluster("stop")
    try:
        down = api.get(f"/v1/subjects/{subject_id}", headers=headers)
        assert down.status_code == 503 and down.headers["retry-after"]
        assert down.json()["error"]["code"] == "store_unavailable"
        assert enroll(api, headers, subject_id, photos[1]) == 503
    finally:
        pg_cluster("start")
    for _ in range(30):  # PostgreSQL accepts connections a moment after start
        if api.get(f"/v1/subjects/{subject_id}", headers=headers).status_code == 200:
            break
        time.sleep(0.5)
    assert enroll(api, headers, subject_id, photos[2]) == 201  # recovered without restarting faceward
    faces = api.get(f"/v1/subjects/{subject_id}", headers=headers).json()["faces"]
    assert len(faces) == 2
    api.close()
