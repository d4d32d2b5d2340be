"""YuNet-n: the shipped file and the numpy decoding (the detector on real photos: tests/integration/vision/test_yunet_detector.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceward.vision.detect import IDENTITY_MAP, YUNET_TO_HOG, BoxMap
from faceward.vision.models import MANIFEST, ModelName, sha256_file, shipped_model_dir, verified_path
from faceward.vision.yunet import RawFaces, decode, nms


def test_the_shipped_file_is_pinned_and_licensed() -> None:
    path = verified_path(ModelName.YUNET)
    assert path.parent == shipped_model_dir() and sha256_file(path) == MANIFEST[ModelName.YUNET].sha256
    assert "Apache License" in (path.parent / "LICENSE").read_text()
    assert "0047ac24afb1a50a0c6105001c89d1b5b805dbf1" in (path.parent / "NOTICE").read_text()


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=np.float32)
    scores = np.array([0.7, 0.9, 0.8], dtype=np.float32)
    assert nms(boxes, scores, 0.3).tolist() == [1, 2]
    assert nms(boxes, scores, 0.99).tolist() == [1, 2, 0]


def test_decode_reads_cells_offsets_and_log_sizes() -> None:
    """One confident prediction in stride-16 cell (row 1, col 2) of a 64x64 input."""
    outputs = {}
    for stride in (8, 16, 32):
        cells = (64 // stride) ** 2
        outputs[f"cls_{stride}"] = np.zeros((1, cells, 1), np.float32)
        outputs[f"obj_{stride}"] = np.zeros((1, cells, 1), np.float32)
        outputs[f"bbox_{stride}"] = np.zeros((1, cells, 4), np.float32)
        outputs[f"kps_{stride}"] = np.zeros((1, cells, 10), np.float32)
    cell = 1 * 4 + 2
    outputs["cls_16"][0, cell] = 0.81
    outputs["obj_16"][0, cell] = 1.0
    outputs["bbox_16"][0, cell] = [0.5, 0.5, np.log(2.0), np.log(3.0)]
    outputs["kps_16"][0, cell, :2] = [0.25, -0.25]
    found = decode(outputs, 64, 64, score_threshold=0.5)
    assert len(found) == 1 and found.scores[0] == pytest.approx(0.9)
    # centre ((2 + 0.5) * 16, (1 + 0.5) * 16) = (40, 24), size (32, 48)
    assert found.boxes[0].tolist() == pytest.approx([24, 0, 56, 48])
    assert found.landmarks[0, 0].tolist() == pytest.approx([36, 12])
    assert len(decode(outputs, 64, 64, score_threshold=0.95)) == 0


def test_box_map_shifts_and_resizes_then_clips() -> None:
    box = BoxMap(dx=0.1, dy=-0.1, sw=0.5, sh=0.5).apply(0, 0, 100, 100, 1000, 1000)
    assert (box.left, box.top, box.right, box.bottom) == (35, 15, 85, 65)
    assert IDENTITY_MAP.apply(-5, -5, 20, 20, 10, 10).as_dict() == {"left": 0, "top": 0, "right": 10, "bottom": 10}


def test_points_map_places_the_box_by_the_5_points() -> None:
    from faceward.vision.detect import KeypointBoxMap

    # eyes 40 apart, mouth 30 below them: scale hypot(40, 30) = 50; centroid (50, 65)
    points = np.array([[30, 50], [70, 50], [50, 65], [35, 80], [65, 80]], dtype=np.float32)
    box = KeypointBoxMap(dx=0.0, dy=0.2, sw=1.6, sh=1.6).apply(points, 1000, 1000)
    assert (box.left, box.top, box.right, box.bottom) == (10, 35, 90, 115)
    assert KeypointBoxMap(0.0, 0.0, 10.0, 10.0).apply(points, 100, 100).as_dict() == {
        "left": 0, "top": 0, "right": 100, "bottom": 100}


def test_the_fitted_map_is_not_the_identity() -> None:
    assert YUNET_TO_HOG != IDENTITY_MAP


def test_raw_faces_scale_to_the_original_frame() -> None:
    found = RawFaces(np.array([[1, 2, 3, 4]], np.float32), np.array([0.9], np.float32), np.ones((1, 5, 2), np.float32))
    scaled = found.scaled(2.0, (10.0, 20.0))
    assert scaled.boxes[0].tolist() == [12, 24, 16, 28] and scaled.landmarks[0, 0].tolist() == [12, 22]


def test_the_package_data_ships_the_model() -> None:
    pyproject = (Path(__file__).resolve().parents[3] / "pyproject.toml").read_text()
    assert '"data/yunet/*"' in pyproject
