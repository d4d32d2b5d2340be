"""YuNet-n, a small anchor-free face detector, on ONNX Runtime; its outputs decoded in numpy.

The model (``yunet_n_dynamic.onnx``, Apache-2.0, shipped in ``faceward/data/yunet/``
with its licence) takes a ``1 x 3 x H x W`` BGR float tensor, 0..255, H and W
multiples of 32, and gives, for each stride 8, 16 and 32, one prediction per
grid cell: class and objectness probabilities, a box (centre offset in cells,
log width and height in cells) and 5 landmarks (offsets in cells). A face's
score is ``sqrt(cls * obj)``, as OpenCV's ``FaceDetectorYN`` computes it.

The landmarks are, in image terms: the eye on the image's left, the eye on the
image's right, the nose tip, the mouth corner on the image's left, the one on
the image's right (ArcFace's 5-point template order).

It was trained on faces of roughly 10 to 300 px, so callers run it on a
downscaled working copy (:func:`faceward.vision.scale.working_copy`) and scale
the detections back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from faceward.vision.decode import RGBImage
from faceward.vision.models import ModelName, verified_path

STRIDES = (8, 16, 32)
DEFAULT_SCORE = 0.6  # OpenCV's demo uses 0.9; 0.6 keeps turned and small faces at ~0 false faces (see decision 012)
DEFAULT_NMS_IOU = 0.3
MAX_CANDIDATES = 5000


@dataclass(frozen=True, slots=True)
class RawFaces:
    """Detections in the coordinates of the image that was run: ``boxes`` N x 4 (x1, y1, x2, y2) float,
    ``scores`` N, ``landmarks`` N x 5 x 2 (template order, see the module's docstring)."""

    boxes: NDArray[np.float32]
    scores: NDArray[np.float32]
    landmarks: NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.scores)

    def scaled(self, factor: float, offset: tuple[float, float] = (0.0, 0.0)) -> RawFaces:
        """The same faces in a frame where this one's pixel ``p`` is at ``p * factor + offset``."""
        shift = np.asarray(offset, dtype=np.float32)
        return RawFaces(
            (self.boxes * factor + np.tile(shift, 2)).astype(np.float32),
            self.scores,
            (self.landmarks * factor + shift).astype(np.float32),
        )

    @staticmethod
    def empty() -> RawFaces:
        return RawFaces(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))

    @staticmethod
    def concat(parts: list[RawFaces]) -> RawFaces:
        parts = [p for p in parts if len(p)]
        if not parts:
            return RawFaces.empty()
        return RawFaces(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.landmarks for p in parts]),
        )

    def take(self, keep: NDArray[np.intp]) -> RawFaces:
        return RawFaces(self.boxes[keep], self.scores[keep], self.landmarks[keep])


def nms(boxes: NDArray[np.float32], scores: NDArray[np.float32], iou: float) -> NDArray[np.intp]:
    """Indices of the boxes greedy non-maximum suppression keeps, best score first."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (boxes[:, i].astype(np.float64) for i in range(4))
    areas = np.maximum(0.0, x2 - x1) * np.maximum(0.0, y2 - y1)
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]))
        inter = w * h
        union = areas[best] + areas[rest] - inter
        overlap = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.intp)


def decode(outputs: dict[str, NDArray[np.float32]], height: int, width: int, *, score_threshold: float) -> RawFaces:
    """YuNet's per-stride outputs for a ``height x width`` (padded) input as faces above ``score_threshold``."""
    parts = []
    for stride in STRIDES:
        cols = width // stride
        cls = outputs[f"cls_{stride}"].reshape(-1)
        obj = outputs[f"obj_{stride}"].reshape(-1)
        scores = np.sqrt(np.clip(cls, 0.0, 1.0) * np.clip(obj, 0.0, 1.0))
        hit = np.flatnonzero(scores >= score_threshold)
        if hit.size == 0:
            continue
        bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)[hit]
        kps = outputs[f"kps_{stride}"].reshape(-1, 5, 2)[hit]
        cell = np.stack([hit % cols, hit // cols], axis=1).astype(np.float32)
        centre = (cell + bbox[:, :2]) * stride
        size = np.exp(np.minimum(bbox[:, 2:], 10.0)) * stride  # bounded: an overflow is never a face
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
        points = (kps + cell[:, None, :]) * stride
        parts.append(RawFaces(boxes.astype(np.float32), scores[hit].astype(np.float32), points.astype(np.float32)))
    return RawFaces.concat(parts)


class YuNet:
    """The YuNet-n session. ``run(image)`` gives every face in ``image`` (any size; padded here to 32)."""

    def __init__(self, *, threads: int | None = None, providers: list[str] | None = None) -> None:
        from faceward.vision.onnx.runtime import make_session

        self._session = make_session(verified_path(ModelName.YUNET), threads=threads, providers=providers)
        self._input = self._session.get_inputs()[0].name
        self._outputs = [o.name for o in self._session.get_outputs()]

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def run(
        self, image: RGBImage, *, score_threshold: float = DEFAULT_SCORE, nms_iou: float = DEFAULT_NMS_IOU
    ) -> RawFaces:
        return self.run_batch([image], score_threshold=score_threshold, nms_iou=nms_iou)[0]

    def run_batch(
        self, images: list[RGBImage], *, score_threshold: float = DEFAULT_SCORE, nms_iou: float = DEFAULT_NMS_IOU
    ) -> list[RawFaces]:
        """Every face in each image, in one session run (images padded to the largest, then to 32)."""
        if not images:
            return []
        pad_h = -(-max(i.shape[0] for i in images) // 32) * 32
        pad_w = -(-max(i.shape[1] for i in images) // 32) * 32
        tensor = np.zeros((len(images), 3, pad_h, pad_w), dtype=np.float32)
        for n, image in enumerate(images):
            height, width = image.shape[:2]
            tensor[n, :, :height, :width] = image[..., ::-1].transpose(2, 0, 1)  # RGB -> BGR planes
        values = self._session.run(self._outputs, {self._input: tensor})
        out = []
        for n in range(len(images)):
            outputs = {name: value[n] for name, value in zip(self._outputs, values)}
            found = decode(outputs, pad_h, pad_w, score_threshold=score_threshold)
            if len(found) > MAX_CANDIDATES:
                found = found.take(np.argsort(-found.scores)[:MAX_CANDIDATES])
            out.append(found.take(nms(found.boxes, found.scores, nms_iou)))
        return out
