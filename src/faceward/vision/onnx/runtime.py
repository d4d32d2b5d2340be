"""ONNX Runtime sessions for the converted dlib networks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from faceward.vision.onnx.convert import DESCRIPTOR_INPUT, DESCRIPTOR_OUTPUT, MMOD_INPUT, MMOD_OUTPUT
from faceward.vision.onnx.mmod import Detection, MmodParams, decode, rect_down_2
from faceward.vision.onnx.pyramid import Rect, pyramid_up, tiled_pyramid

CHIP_SIZE = 150
DESCRIPTOR_DIM = 128
# Bounds activation memory (~6 MB per chip) without costing throughput.
MAX_BATCH = 64


def default_providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, CPU always as the fallback."""
    available = ort.get_available_providers()
    wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return [p for p in wanted if p in available] or ["CPUExecutionProvider"]


def make_session(
    model_path: Path, *, threads: int | None = None, providers: list[str] | None = None
) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads if threads is not None else (os.cpu_count() or 1)
    options.inter_op_num_threads = 1  # the graphs are chains; parallelism is inside each op
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning workers make an oversubscribed host (web server, dlib, other jobs on 2 cores)
    # 2-3x slower; parked workers cost a few percent on an idle one.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
            self._session.run([DESCRIPTOR_OUTPUT], {DESCRIPTOR_INPUT: np.ascontiguousarray(part)})[0]
            for part in (chips[i : i + MAX_BATCH] for i in range(0, len(chips), MAX_BATCH))
        ]
        return np.concatenate(parts).astype(np.float32, copy=False)


class OnnxMmodDetector:
    """dlib's MMOD CNN face detector (``cnn_face_detection_model_v1``) on ONNX Runtime.

    The convolutions run in ONNX Runtime; the image pyramid and the box decoding
    are dlib's, reproduced in numpy (:mod:`.pyramid`, :mod:`.mmod`).
    """

    def __init__(self, model_path: Path, *, threads: int | None = None, providers: list[str] | None = None) -> None:
        self._session = make_session(model_path, threads=threads, providers=providers)
        meta = dict(self._session.get_modelmeta().custom_metadata_map)
        if meta.get("faceward.kind") != "mmod":
            raise ValueError(f"{model_path} is not a converted MMOD detector")
        self._params = MmodParams.from_metadata(meta)
        red, green, blue = (float(v) for v in meta["dlib.input.avg"].split(","))
        self._avg = (red, green, blue)
        self._padding = int(meta["dlib.pyramid.padding"])
        self._outer = int(meta["dlib.pyramid.outer_padding"])

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def scores(self, rgb: NDArray[np.uint8]) -> tuple[NDArray[np.float32], list[Rect]]:
        """The raw score map of one (already upsampled) image and its pyramid level rectangles."""
        pyramid, rects = tiled_pyramid(
            rgb, self._avg, down=self._params.pyramid_down, padding=self._padding, outer=self._outer
        )
        out = self._session.run([MMOD_OUTPUT], {MMOD_INPUT: pyramid[None]})[0]
        return out[0], rects

    def detect(self, rgb: NDArray[np.uint8], upsample: int = 0) -> list[Detection]:
        """Faces in an RGB (or grayscale) uint8 image: ``(left, top, right, bottom, confidence)``, best first.

        Same boxes and confidences as ``dlib.cnn_face_detection_model_v1(...)(rgb, upsample)``.
        """
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or not (rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[2] == 3)):
            raise ValueError(f"expected a uint8 RGB or grayscale image, got {rgb.dtype} {rgb.shape}")
        if upsample < 0:
            raise ValueError("upsample must be >= 0")
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[:, :, None], 3, axis=2)
        for _ in range(upsample):
            rgb = pyramid_up(rgb)
        if min(rgb.shape[:2]) == 0:
            return []
        scores, rects = self.scores(np.ascontiguousarray(rgb))
        return [rect_down_2(d, upsample) for d in decode(scores, rects, self._params)]
