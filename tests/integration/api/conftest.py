"""Fixtures of the API tests: one app per module and backend, one face engine per session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from apiworld import GENEROUS, World, make_settings, make_world, pg_schema

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


@contextmanager
def running_world(db_url: str, home: Path, engine: FaceEngine, face: Face, images: dict[str, bytes]) -> Iterator[World]:
    app = create_app(make_settings(home, db_url), engine=engine, limits=GENEROUS)
    w = make_world(app, face, images)
    try:
        yield w
    finally:
        w.api.close()
        w.services.gallery.store.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine,
          astronaut_face: Face, images: dict[str, bytes]) -> Iterator[World]:
    """The world on SQLite, then on PostgreSQL (like the ``db_url`` fixture, but one per module)."""
    home = tmp_path_factory.mktemp("home")
    if request.param == "sqlite":
        with running_world(f"sqlite:///{home / 'faceward.db'}", home, face_engine, astronaut_face, images) as w:
            yield w
        return
    with pg_schema(str(request.getfixturevalue("pg_admin_url"))) as url, \
            running_world(url, home, face_engine, astronaut_face, images) as w:
        yield w


@pytest.fixture(scope="module")
def sqlite_world(tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine, astronaut_face: Face,
                 images: dict[str, bytes]) -> Iterator[World]:
    """SQLite only, for tests about HTTP itself rather than the stores."""
    home = tmp_path_factory.mktemp("home")
    with running_world(f"sqlite:///{home / 'faceward.db'}", home, face_engine, astronaut_face, images) as w:
        yield w


@pytest.fixture(scope="module")
def pg_world(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine,
             astronaut_face: Face, images: dict[str, bytes]) -> Iterator[World]:
    """PostgreSQL only."""
    with pg_schema(pg_admin_url) as url, \
            running_world(url, tmp_path_factory.mktemp("home"), face_engine, astronaut_face, images) as w:
        yield w
