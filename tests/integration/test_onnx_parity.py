"""The converted ResNet descriptor gives dlib's numbers on real faces (lfw-dev).

The chips come from dlib's own pipeline (HOG detector, upsample 1; 5-point
landmarks; get_face_chip), so both runtimes see identical pixels and any
difference is the runtime's. ``FACEWARD_PARITY_FACES`` raises the sample size
for a one-off full measurement (the CI default stays well under a minute).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

pytestmark = [pytest.mark.lfw, pytest.mark.slow]

MIN_COSINE = 0.99999
MAX_ABS_DIFF = 1e-4
REPO = Path(__file__).resolve().parents[2]


def lfw_dir() -> Path:
    return Path(os.environ.get("FACEWARD_LFW_DIR") or REPO.parent / "shared" / "datasets" / "lfw-dev")


def sample_images(root: Path, count: int) -> list[Path]:
    """Every k-th image in sorted order: spread over many identities, identical on every run."""
    images = sorted((root / "images").glob("*/*.jpg"))
    step = max(1, len(images) // count)
    return images[::step][:count]


def dlib_chips(paths: list[Path], limit: int) -> NDArray[np.uint8]:
    import dlib
    from PIL import Image

    from faceward.vision.models import ModelName, verified_path

    detector = dlib.get_frontal_face_detector()
    landmarks = dlib.shape_predictor(str(verified_path(ModelName.LANDMARKS_5)))
    chips: list[NDArray[np.uint8]] = []
    for path in paths:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"))
        for box in detector(rgb, 1):
            chips.append(dlib.get_face_chip(rgb, landmarks(rgb, box), size=150, padding=0.25))
        if len(chips) >= limit:
            break
    return np.stack(chips[:limit])


@pytest.fixture(scope="module")
def chips() -> NDArray[np.uint8]:
    root = lfw_dir()
    if not (root / "images").is_dir():
        pytest.skip(f"lfw-dev not found at {root} (set FACEWARD_LFW_DIR)")
    faces = int(os.environ.get("FACEWARD_PARITY_FACES", "60"))
    return dlib_chips(sample_images(root, faces + faces // 5), faces)


def test_onnx_descriptor_matches_dlib(chips: NDArray[np.uint8], tmp_path_factory: pytest.TempPathFactory) -> None:
    import dlib

    from faceward.vision.models import ModelName, verified_path
    from faceward.vision.onnx import OnnxDescriptor, converted_model_path

    model = converted_model_path("descriptor", tmp_path_factory.mktemp("onnx-cache"))
    onnx_out = OnnxDescriptor(model).compute(chips)

    net = dlib.face_recognition_model_v1(str(verified_path(ModelName.DESCRIPTOR)))
    ref = np.asarray([np.asarray(net.compute_face_descriptor(c)) for c in chips], dtype=np.float32)

    assert onnx_out.shape == ref.shape == (len(chips), 128)
    cosine = (onnx_out * ref).sum(1) / (np.linalg.norm(onnx_out, axis=1) * np.linalg.norm(ref, axis=1))
    max_abs = float(np.abs(onnx_out - ref).max())
    print(f"\nparity over {len(chips)} faces: min cosine {cosine.min():.9f}, max abs diff {max_abs:.3g}")
    assert cosine.min() >= MIN_COSINE
    assert max_abs <= MAX_ABS_DIFF


def test_batch_and_single_agree(chips: NDArray[np.uint8], tmp_path_factory: pytest.TempPathFactory) -> None:
    from faceward.vision.onnx import OnnxDescriptor, converted_model_path

    runtime = OnnxDescriptor(converted_model_path("descriptor", tmp_path_factory.mktemp("onnx-cache")), threads=1)
    batch = runtime.compute(chips[:8])
    single = np.concatenate([runtime.compute(chips[i : i + 1]) for i in range(8)])
    assert np.abs(batch - single).max() <= 1e-5
    assert runtime.compute(chips[:0]).shape == (0, 128)
    assert "CPUExecutionProvider" in runtime.providers
    with pytest.raises(ValueError):
        runtime.compute(chips[:, :100])


@pytest.mark.parametrize(("upsample", "count"), [(0, 10), (1, 2)])
def test_onnx_mmod_matches_dlib(upsample: int, count: int, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Same boxes (exactly) and confidences as dlib's CNN detector; FACEWARD_PARITY_MMOD_IMAGES scales it up."""
    import dlib
    from PIL import Image

    from faceward.vision.models import ModelName, verified_path
    from faceward.vision.onnx import OnnxMmodDetector, converted_model_path

    root = lfw_dir()
    if not (root / "images").is_dir():
        pytest.skip(f"lfw-dev not found at {root} (set FACEWARD_LFW_DIR)")
    count = int(os.environ.get("FACEWARD_PARITY_MMOD_IMAGES", count))
    reference = dlib.cnn_face_detection_model_v1(str(verified_path(ModelName.MMOD)))
    detector = OnnxMmodDetector(converted_model_path("mmod", tmp_path_factory.mktemp("onnx-cache")))
    faces, worst = 0, 0.0
    for path in sample_images(root, count):
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"))
        ref = [
            (d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), d.confidence)
            for d in reference(rgb, upsample)
        ]
        out = detector.detect(rgb, upsample)
        assert [r[:4] for r in out] == [r[:4] for r in ref], path.name
        worst = max([worst, *(abs(a[4] - b[4]) for a, b in zip(out, ref, strict=True))])
        faces += len(ref)
    print(f"\nmmod parity, upsample {upsample}: {count} images, {faces} faces, max confidence diff {worst:.3g}")
    assert faces >= count // 2
    assert worst <= 1e-4
