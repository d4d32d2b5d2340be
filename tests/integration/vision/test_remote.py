"""Face analysis in worker processes gives the in-process results and the same errors."""

from __future__ import annotations

import numpy as np
import pytest

from faceward.vision import Embed, FaceEngine
from faceward.vision.engine import EngineOptions
from faceward.vision.errors import CorruptImage, UnsupportedFormat
from faceward.vision.remote import RemoteEngine


@pytest.fixture(scope="module")
def remote() -> RemoteEngine:
    engine = RemoteEngine(EngineOptions(), workers=1, max_bytes=5_000_000, max_pixels=10_000_000)
    yield engine
    engine.close()


def test_same_faces_as_in_process(remote: RemoteEngine, astronaut_jpeg: bytes) -> None:
    from faceward.vision import decode_image

    faces, size = remote.analyze(astronaut_jpeg)
    local = FaceEngine().analyze(decode_image(astronaut_jpeg))
    assert size == (300, 300) and len(faces) == len(local) == 1
    assert faces[0].box == local[0].box
    assert faces[0].descriptor is not None and np.abs(faces[0].descriptor - local[0].descriptor).max() < 1e-6
    boxes, _ = remote.analyze(astronaut_jpeg, embed=Embed.NONE)
    assert boxes[0].descriptor is None and boxes[0].box == local[0].box
    subject, _ = remote.analyze(astronaut_jpeg, embed=Embed.DOMINANT)  # the choice crosses the process boundary
    assert subject[0].descriptor is not None and np.array_equal(subject[0].descriptor, faces[0].descriptor)


def test_errors_cross_the_process_boundary(remote: RemoteEngine, astronaut_jpeg: bytes) -> None:
    with pytest.raises(UnsupportedFormat, match="JPEG, PNG or WebP"):
        remote.analyze(b"not an image")
    with pytest.raises(CorruptImage):
        remote.analyze(astronaut_jpeg[: len(astronaut_jpeg) // 2])
