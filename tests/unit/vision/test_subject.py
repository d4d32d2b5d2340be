"""The subject of an enrollment photo: the one face, or the clearly most prominent one (width x centrality)."""

from __future__ import annotations

import pytest

from faceward.vision import AmbiguousSubject, Box, dominant_face, subject_face
from faceward.vision.subject import Embed, prominence, to_embed


def test_one_face_is_the_subject() -> None:
    assert dominant_face([Box(0, 0, 10, 10)]) == 0
    assert dominant_face([Box(0, 0, 10, 10)], (640, 480)) == 0


def test_a_much_larger_face_is_the_subject() -> None:
    assert dominant_face([Box(500, 0, 530, 30), Box(0, 0, 100, 100), Box(300, 300, 360, 360)]) == 1


def test_the_central_face_wins_over_a_neighbour_of_similar_size_at_the_edge() -> None:
    # A news crop: the subject centred, a neighbour 85% of its width cut by the frame's edge.
    subject, neighbour = Box(75, 75, 175, 175), Box(200, 60, 285, 145)
    assert dominant_face([neighbour, subject], (250, 250)) == 1
    with pytest.raises(AmbiguousSubject):
        dominant_face([neighbour, subject])  # by width alone they compete


def test_two_similar_faces_both_central_are_ambiguous() -> None:
    with pytest.raises(AmbiguousSubject, match="none clearly the subject"):
        dominant_face([Box(200, 200, 300, 300), Box(340, 200, 430, 290)], (640, 480))  # a couple, side by side
    assert AmbiguousSubject("x").code == "ambiguous_subject" and AmbiguousSubject("x").status == 422


def test_prominence_falls_from_the_centre_to_the_corners() -> None:
    centred, corner = Box(270, 190, 370, 290), Box(540, 380, 640, 480)
    assert prominence(centred, (640, 480)) == pytest.approx(100, abs=1)
    assert prominence(corner, (640, 480)) < 20 and prominence(corner, None) == 100


def test_a_search_takes_the_subject_even_where_enrollment_would_refuse() -> None:
    # A larger neighbour at the frame's edge is not the photo's subject; two equal central faces give the first.
    subject, neighbour = Box(90, 80, 170, 160), Box(170, 40, 262, 132)
    assert neighbour.width > subject.width
    assert subject_face([neighbour, subject], (250, 250)) == 1
    assert subject_face([neighbour, subject]) == 0  # without the image's size, the widest
    couple = [Box(200, 200, 300, 300), Box(340, 200, 440, 300)]
    assert subject_face(couple, (640, 500)) == 0 and subject_face(couple[::-1], (640, 500)) == 0
    with pytest.raises(ValueError):
        subject_face([], (640, 480))


def test_only_the_acts_face_is_embedded() -> None:
    # Decision 038: the descriptor runs on the face the act uses, never on a bystander.
    subject, bystander, size = Box(100, 100, 300, 300), Box(500, 20, 560, 80), (640, 480)
    couple = [Box(200, 200, 300, 300), Box(340, 200, 440, 300)]
    assert to_embed([subject, bystander], size, Embed.ALL) == [0, 1]
    assert to_embed([subject, bystander], size, Embed.NONE) == []
    assert to_embed([bystander, subject], size, Embed.SUBJECT) == [1]
    assert to_embed([bystander, subject], size, Embed.DOMINANT) == [1]
    assert to_embed(couple, size, Embed.DOMINANT) == []  # ambiguous: enrollment refuses it from the boxes
    assert to_embed(couple, size, Embed.SUBJECT) == [0]  # a search still takes one
    assert to_embed([subject, bystander], size, 1) == [1]
    assert to_embed([subject, bystander], size, 2) == [] and to_embed([subject], size, -1) == []
    assert to_embed([], size, Embed.SUBJECT) == [] and to_embed([], size, 0) == []
    with pytest.raises(TypeError):
        to_embed([subject], size, True)
