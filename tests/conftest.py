"""Shared fixtures: real images (scikit-image's astronaut, lfw-dev when present), real databases."""

from __future__ import annotations

import base64
import io
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.oidc_providers import Providers, start_providers

REPO = Path(__file__).resolve().parents[1]


def lfw_root() -> Path | None:
    candidates = [os.environ.get("FACEWARD_LFW_DIR"), REPO.parent / "shared" / "datasets" / "lfw-dev"]
    for c in candidates:
        if c and (Path(c) / "pairs.csv").is_file():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    root = lfw_root()
    if root is None:
        pytest.skip("lfw-dev dataset not found (set FACEWARD_LFW_DIR or place it at ../shared/datasets/lfw-dev)")
    return root


OWN_MODEL = REPO / "benchmarks" / "models" / "mobilefacenet.json"


def own_model_manifest(folder: Path) -> Path:
    """The MobileFaceNet benchmark manifest copied into ``folder`` (a calibration table written beside it
    stays there), its model named by absolute path; skips when the research-only model is not on this machine."""
    spec = json.loads(OWN_MODEL.read_text())
    model = (OWN_MODEL.parent / spec["file"]).resolve()
    if not model.is_file():
        pytest.skip(f"MobileFaceNet not found at {model} (place it at ../shared/models/mobilefacenet/)")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mobilefacenet.json"
    path.write_text(json.dumps(spec | {"file": str(model)}))
    return path


def jpeg(pixels: np.ndarray, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def with_bystander(subject: np.ndarray) -> np.ndarray:
    """``subject`` beside a half-size copy of itself, apart and on white: one subject and one bystander."""
    small = subject[::2, ::2]
    return np.concatenate([subject, np.pad(small, ((0, 150), (0, 150), (0, 0)), constant_values=255)], axis=1)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut (public domain, NASA), cropped to her face and shoulders: one face."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[0:300, 80:380])


@pytest.fixture(scope="session")
def astronaut_jpeg(astronaut: np.ndarray) -> bytes:
    return jpeg(astronaut)


@pytest.fixture(scope="session")
def astronaut_probe(astronaut: np.ndarray) -> bytes:
    """The same face, mirrored and slightly brightened: a different photo of the same person."""
    shifted = np.clip(astronaut[:, ::-1].astype(np.int16) + 12, 0, 255).astype(np.uint8)
    return jpeg(shifted, quality=80)


@pytest.fixture()
def master_key_b64() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, master_key_b64: str) -> Path:
    """An isolated FACEWARD_HOME with a real master key in the environment."""
    monkeypatch.setenv("FACEWARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FACEWARD_MASTER_KEY", master_key_b64)
    for name in list(os.environ):
        if name.startswith("FACEWARD_") and name not in {"FACEWARD_HOME", "FACEWARD_MASTER_KEY", "FACEWARD_LFW_DIR", "FACEWARD_PG_URL"}:
            monkeypatch.delenv(name)
    return tmp_path / "home"


PG_URL = os.environ.get("FACEWARD_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), connect_timeout=2):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    if not postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    return PG_URL


@pytest.fixture()
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for one test, dropped afterwards."""
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{pg_admin_url}?options=-csearch_path%3D{schema}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


REDIS_URL = os.environ.get("FACEWARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis that replicas would share their rate buckets through (this machine kind runs one on 6379)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.RedisError:
        pytest.skip(f"Redis not reachable at {REDIS_URL} (set FACEWARD_TEST_REDIS_URL)")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a test on both stores: SQLite (embedded default) and PostgreSQL (server)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'faceward.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Milvus standalone server on loopback for the whole session (one, to keep CI's memory and time small).

    Tests share it: each gives its collections a prefix of its own and drops them.
    """
    from faceward.index.milvus_server import MilvusStandalone, milvus_server_available

    if not milvus_server_available():
        pytest.skip("the Milvus standalone server is not installed: pip install milvus (part of the test extra)")
    server = MilvusStandalone(tmp_path_factory.mktemp("milvus-server"))
    server.stop_timeout_s = 5.0  # a throw-away server: no need to wait for its flush on exit
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def milvus_uri(milvus_server: Any) -> str:
    return str(milvus_server.uri)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI (CI=true) a skipped test is a failure: the data and servers CI needs must be there."""
    if os.environ.get("CI", "").lower() != "true":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reasons = sorted({str(r.longrepr[-1]) if isinstance(r.longrepr, tuple) else str(r.longrepr) for r in skipped})
        if reporter:
            reporter.write_line(f"CI=true: {len(skipped)} test(s) skipped, which fails CI:", red=True)
            for reason in reasons:
                reporter.write_line(f"  - {reason}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def oidc_providers() -> Iterator[Providers]:
    """Real OpenID Connect providers on loopback, started once for the whole session (``tests/oidc_providers.py``)."""
    yield from start_providers()
