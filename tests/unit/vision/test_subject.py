"""The subject of an enrollment photo: the one face, or the clearly dominant one."""

from __future__ import annotations

import pytest

from faceward.vision import AmbiguousSubject, Box, dominant_face


def test_one_face_is_the_subject() -> None:
    assert dominant_face([Box(0, 0, 10, 10)]) == 0


def test_a_much_larger_face_apart_from_the_others_is_the_subject() -> None:
    assert dominant_face([Box(500, 0, 530, 30), Box(0, 0, 100, 100), Box(300, 300, 360, 360)]) == 1


def test_similar_sizes_or_overlap_are_ambiguous() -> None:
    with pytest.raises(AmbiguousSubject, match="none clearly the subject"):
        dominant_face([Box(0, 0, 100, 100), Box(200, 0, 280, 80)])  # 100 vs 80 px: two people
    assert dominant_face([Box(0, 0, 100, 100), Box(95, 0, 155, 60)]) == 0  # touching, not overlapping
    with pytest.raises(AmbiguousSubject, match="overlapping"):
        dominant_face([Box(0, 0, 100, 100), Box(60, 60, 120, 120)])  # a smaller face on top of the large one
    assert AmbiguousSubject("x").code == "ambiguous_subject" and AmbiguousSubject("x").status == 422
