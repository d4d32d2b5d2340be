"""ONNX Runtime sessions for the converted dlib networks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from faceward.vision.onnx.convert import DESCRIPTOR_INPUT, DESCRIPTOR_OUTPUT

CHIP_SIZE = 150
DESCRIPTOR_DIM = 128
# Bounds activation memory (~6 MB per chip) without costing throughput.
MAX_BATCH = 64


def default_providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, CPU always as the fallback."""
    available = ort.get_available_providers()
    wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return [p for p in wanted if p in available] or ["CPUExecutionProvider"]


def make_session(model_path: Path, *, threads: int | None = None, providers: list[str] | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads if threads is not None else (os.cpu_count() or 1)
    options.inter_op_num_threads = 1  # the graphs are chains; parallelism is inside each op
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(model_path), options, providers=providers or default_providers())


class OnnxDescriptor:
    """dlib's ResNet face descriptor on ONNX Runtime: same numbers, many times faster."""

    def __init__(self, model_path: Path, *, threads: int | None = None, providers: list[str] | None = None) -> None:
        self._session = make_session(model_path, threads=threads, providers=providers)

    @property
    def providers(self) -> list[str]:
        """Execution providers the session actually uses, in priority order."""
        return list(self._session.get_providers())

    def compute(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Raw (un-normalised) descriptors of ``uint8 [N,150,150,3]`` RGB chips, as ``float32 [N,128]``.

        The chips are what ``dlib.get_face_chip(img, shape, size=150, padding=0.25)`` returns.
        """
        chips = np.asarray(chips)
        if chips.dtype != np.uint8 or chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"expected uint8 [N,{CHIP_SIZE},{CHIP_SIZE},3] chips, got {chips.dtype} {chips.shape}")
        if len(chips) == 0:
            return np.zeros((0, DESCRIPTOR_DIM), dtype=np.float32)
        parts = [
            self._session.run([DESCRIPTOR_OUTPUT], {DESCRIPTOR_INPUT: np.ascontiguousarray(chips[i : i + MAX_BATCH])})[0]
            for i in range(0, len(chips), MAX_BATCH)
        ]
        return np.concatenate(parts).astype(np.float32, copy=False)
