"""Face descriptors: a chip batch in, unit-length float32 vectors out."""

from __future__ import annotations

from typing import Protocol, cast

import dlib
import numpy as np
from numpy.typing import NDArray

from faceward.vision.models import DLIB_DESCRIPTOR_ID, ModelName, verified_path

Vectors = NDArray[np.float32]


class DescriptorRuntime(Protocol):
    """Computes raw (un-normalised) descriptors for a batch of ``N x 150 x 150 x 3`` RGB chips."""

    def compute(self, chips: NDArray[np.uint8]) -> Vectors: ...


class DlibDescriptor:
    """The reference runtime: dlib's own ResNet, as face_recognition runs it."""

    def __init__(self) -> None:
        self._net = dlib.face_recognition_model_v1(str(verified_path(ModelName.DESCRIPTOR)))

    def compute(self, chips: NDArray[np.uint8]) -> Vectors:
        if len(chips) == 0:
            return np.zeros((0, 128), dtype=np.float32)
        out = self._net.compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
        return np.asarray([np.asarray(v) for v in out], dtype=np.float32)


def normalise(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return cast(Vectors, (vectors / np.maximum(norms, 1e-12)).astype(np.float32))


def templates(raw: Vectors, flipped: Vectors | None = None) -> Vectors:
    """Templates from raw descriptors (``N x d``): mirror-averaged with ``flipped`` when given, then unit length.

    The one place mirror averaging happens: the engine, the bulk workers, the CLI
    and the evaluation all turn raw descriptors into templates here, so a photo
    gives the same template bytes whichever path analysed it.
    """
    return normalise(raw + flipped if flipped is not None else raw)


class Embedder:
    """Turns chips into templates: optional mirror averaging, then L2 normalisation.

    Scores are cosine similarities of these unit vectors, so a dot product is the whole comparison.
    """

    def __init__(self, runtime: DescriptorRuntime, *, flip_average: bool, model_id: str = DLIB_DESCRIPTOR_ID) -> None:
        self.runtime = runtime
        self.flip_average = flip_average
        self.model_id = model_id

    def embed(self, chips: NDArray[np.uint8]) -> Vectors:
        if not (self.flip_average and len(chips)):
            return templates(self.runtime.compute(chips))
        return templates(*with_mirrors(self.runtime, chips))


def with_mirrors(runtime: DescriptorRuntime, chips: NDArray[np.uint8]) -> tuple[Vectors, Vectors]:
    """Raw descriptors of ``chips`` and of their mirror images, from one batch: one run of the network,
    the same numbers as two (the engine and the bulk workers both call this)."""
    both = runtime.compute(np.concatenate([chips, chips[:, :, ::-1, :]]))
    return both[: len(chips)], both[len(chips) :]


def to_template(vector: NDArray[np.float32]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_template(blob: bytes) -> NDArray[np.float32]:
    if len(blob) % 4:
        raise ValueError("template length is not a multiple of 4 bytes")
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)
