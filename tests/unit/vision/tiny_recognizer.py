"""A tiny ONNX face recognizer the tests build themselves, and its manifest.

The "model" is a fixed random projection of the normalised 112x112 input
(average-pooled 4x4 first, to keep the weights small) to 64 values: no
accuracy, but the real plumbing: an ONNX file, its SHA-256, NCHW float input,
an embedding out.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from faceward.vision.align import ARCFACE_112_TEMPLATE

SIZE = 112
DIM = 64
THRESHOLD = 0.5


def build_model(seed: int = 0) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    pooled = 3 * (SIZE // 4) * (SIZE // 4)
    weights = (rng.standard_normal((pooled, DIM)) / np.sqrt(pooled)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("AveragePool", ["input"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "projection"], ["embedding"]),
        ],
        "tiny-recognizer",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", DIM])],
        initializer=[numpy_helper.from_array(weights, "projection")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="faceward-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def manifest_data(file: str, sha256: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "tiny-proj", "version": "1", "file": file, "sha256": sha256,
        "input_size": [SIZE, SIZE], "colour_order": "RGB", "layout": "NCHW",
        "mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5],
        "template": [list(p) for p in ARCFACE_112_TEMPLATE],
        "embedding_size": DIM, "metric": "cosine", "threshold": THRESHOLD,
        "licence": "test fixture: a random projection, no terms", "training_data": "none (random weights)",
        "intended_use": "faceward's tests",
    }
    data.update(changes)
    return data


def write_recognizer(folder: Path, *, seed: int = 0, name: str = "tiny-proj", **changes: Any) -> Path:
    """Write ``<name>.onnx`` and ``<name>.json`` (its manifest) into ``folder``; return the manifest's path."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = build_model(seed)
    (folder / f"{name}.onnx").write_bytes(payload)
    data = manifest_data(f"{name}.onnx", hashlib.sha256(payload).hexdigest(), name=name, **changes)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path
