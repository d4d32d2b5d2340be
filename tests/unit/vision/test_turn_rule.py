"""The turn check's rule (decision 035 and its addendum), on a fake network that scores each turn as told."""

from __future__ import annotations

import numpy as np
import pytest

from faceward.vision.decode import RGBImage
from faceward.vision.detect import HALF_TURN_BELOW, HALF_TURN_MARGIN, Detection, YuNetDetector
from faceward.vision.types import Box
from faceward.vision.yunet import RawFaces

SENT, CCW, CW, HALF = "top-left", "bottom-left", "top-right", "bottom-right"  # where each turn puts the face's mark


class ScoredTurns:
    """Finds the made face (red > 50) in any copy, turn or crop, and scores it by where its mark (red > 200) is."""

    providers = ["fake"]

    def __init__(self, scores: dict[str, float], *, smallest: int = 40) -> None:
        self.scores, self.smallest, self.runs = scores, smallest, 0

    def run(self, image: RGBImage, *, score_threshold: float = 0.6) -> RawFaces:
        self.runs += 1
        rows, cols = np.nonzero(image[:, :, 0] > 50)
        if not len(rows) or cols.max() - cols.min() < self.smallest:  # too small on this copy to be found
            return RawFaces.empty()
        mark_rows, mark_cols = np.nonzero(image[:, :, 0] > 200)
        corner = ("top" if mark_rows.mean() < rows.mean() else "bottom") + "-" + (
            "left" if mark_cols.mean() < cols.mean() else "right")
        score = self.scores.get(corner, 0.0)
        if score < score_threshold:
            return RawFaces.empty()
        box = np.array([[cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]], np.float32)
        return RawFaces(box, np.array([score], np.float32), np.zeros((1, 5, 2), np.float32))


def photo(height: int, width: int, face: Box) -> RGBImage:
    """A backdrop (a green ramp: no copy of it is flat) with a made face (red) whose top-left third is marked."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :, 1] = np.linspace(0, 200, width, dtype=np.float32).astype(np.uint8)
    image[face.top : face.bottom, face.left : face.right, 0] = 100
    image[face.top : face.top + face.height // 3, face.left : face.left + face.width // 3, 0] = 255
    return image


def found(score: float, face: Box) -> list[Detection]:
    return [Detection(face, score, "yunet", raw_box=face)] if score else []


PORTRAIT = Box(75, 75, 175, 175)  # 250x250, the face 100 px wide: as an lfw-dev photo


def test_an_upside_down_face_scoring_0_9_or_more_is_turned_by_the_half_turn_alone() -> None:
    net = ScoredTurns({SENT: 0.91, HALF: 0.94, CCW: 0.95, CW: 0.95})
    detector = YuNetDetector(net=net)
    assert detector.upright_turn(photo(250, 250, PORTRAIT), found(0.91, PORTRAIT)) == 2
    assert net.runs == 1  # no quarter turn: a face on its side scores under 0.9 (decision 035)


@pytest.mark.parametrize("half", [0.91 + HALF_TURN_MARGIN - 0.001, 0.90, 0.0])
def test_an_upright_face_is_not_turned_unless_the_half_turn_beats_it_by_the_margin(half: float) -> None:
    detector = YuNetDetector(net=ScoredTurns({SENT: 0.91, HALF: half}))
    assert detector.upright_turn(photo(250, 250, PORTRAIT), found(0.91, PORTRAIT)) == 0


def test_a_face_scoring_over_the_bound_is_not_checked() -> None:
    net = ScoredTurns({SENT: HALF_TURN_BELOW, HALF: 0.99})
    assert YuNetDetector(net=net).upright_turn(photo(250, 250, PORTRAIT), found(HALF_TURN_BELOW, PORTRAIT)) == 0
    assert net.runs == 0


def test_under_0_9_every_turn_is_tried_and_the_best_wins() -> None:
    net = ScoredTurns({SENT: 0.8, CCW: 0.91, CW: 0.95, HALF: 0.92})
    assert YuNetDetector(net=net).upright_turn(photo(250, 250, PORTRAIT), found(0.8, PORTRAIT)) == 3
    assert net.runs == 3


def test_a_small_face_the_working_copy_cannot_show_is_checked_on_a_crop_around_it() -> None:
    """3000x2000: the 60-px face is 13 px on the working copy, too small there; the crop shows it 100 px wide."""
    face = Box(1200, 900, 1260, 960)
    net = ScoredTurns({SENT: 0.7, CCW: 0.94})
    assert YuNetDetector(net=net).upright_turn(photo(2000, 3000, face), found(0.7, face)) == 1
    assert net.runs == 3 + 1 + 3  # the working copy's turns, then the crop as sent and turned


def test_the_crop_is_not_made_for_a_face_the_working_copy_shows_well_nor_for_none() -> None:
    net = ScoredTurns({SENT: 0.7, CCW: 0.94}, smallest=1000)  # the network finds it nowhere
    detector = YuNetDetector(net=net)
    assert detector.upright_turn(photo(250, 250, PORTRAIT), found(0.7, PORTRAIT)) == 0
    assert detector.upright_turn(photo(2000, 3000, Box(1200, 900, 1260, 960)), []) == 0
    assert net.runs == 3 + 3


def test_a_crop_scoring_higher_as_sent_raises_the_bar() -> None:
    """The tile's score was 0.7, but on the crop the face scores 0.92 as sent: only the half turn, by the margin."""
    face = Box(1200, 900, 1260, 960)
    net = ScoredTurns({SENT: 0.92, CCW: 0.925, HALF: 0.93})
    assert YuNetDetector(net=net).upright_turn(photo(2000, 3000, face), found(0.7, face)) == 0
