"""Fixtures of the API tests: one app per module and backend, one face engine per session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from apiworld import GENEROUS, World, make_settings, make_world

from faceward.api.app import create_app
from faceward.vision import FaceEngine, decode_image
from faceward.vision.types import Face


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def face_engine() -> FaceEngine:
    return FaceEngine()


@pytest.fixture(scope="session")
def astronaut_face(face_engine: FaceEngine, astronaut_jpeg: bytes) -> Face:
    faces = face_engine.analyze(decode_image(astronaut_jpeg))
    assert len(faces) == 1 and faces[0].descriptor is not None
    return faces[0]


@pytest.fixture(scope="session")
def images(astronaut_jpeg: bytes, astronaut_probe: bytes) -> dict[str, bytes]:
    return {"astronaut": astronaut_jpeg, "probe": astronaut_probe}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like the ``db_url`` fixture, but one database per test module (the app is module-scoped)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'faceward.db'}"
        return
    import psycopg

    admin = str(request.getfixturevalue("pg_admin_url"))
    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{admin}?options=-csearch_path%3D{schema}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="module")
def world(api_db_url: str, tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine, astronaut_face: Face,
          images: dict[str, bytes]) -> Iterator[World]:
    settings = make_settings(tmp_path_factory.mktemp("home"), api_db_url)
    app = create_app(settings, engine=face_engine, limits=GENEROUS)
    w = make_world(app, astronaut_face, images)
    yield w
    w.api.close()
    w.services.gallery.store.close()


@pytest.fixture(scope="module")
def sqlite_world(tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine, astronaut_face: Face,
                 images: dict[str, bytes]) -> Iterator[World]:
    """SQLite only, for tests about HTTP itself rather than the stores."""
    home = tmp_path_factory.mktemp("home")
    settings = make_settings(home, f"sqlite:///{home / 'faceward.db'}")
    app = create_app(settings, engine=face_engine, limits=GENEROUS)
    w = make_world(app, astronaut_face, images)
    yield w
    w.api.close()
    w.services.gallery.store.close()
