"""The ANN index module and the ONNX engine load together in either order (a native-library clash once crashed)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "code",
    [
        "import faceward.index.ann; import onnxruntime; import faceward.vision.onnx",
        "import faceward.vision.onnx; import faceward.index.ann",
        "import faceward.index.factory, faceward.services.gallery, faceward.cli.main",
        # faiss (the pq4 table) with ONNX Runtime and USearch, both ways round, actually used.
        "import faceward.vision.onnx, faceward.index.ann, faiss; faiss.IndexPQFastScan(8, 4, 4)",
        "import faiss, faceward.index.ann, faceward.vision.onnx; faiss.IndexPQFastScan(8, 4, 4)",
    ],
)
def test_imports_do_not_crash(code: str) -> None:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]

