"""Which face of a photo an act is about, and which faces get a descriptor at all.

Enrollment takes the photo's clearly dominant face, search and verification its most
prominent one (or the face a caller names). Only that face is embedded: no template of a
bystander is ever computed, even in a worker's memory (decision 038), and a group photo
costs one descriptor run, not one per face.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from faceward.vision.errors import AmbiguousSubject
from faceward.vision.types import Box

# The subject of an enrollment photo is its most prominent face (width x centrality, see
# :func:`prominence`) when that prominence is at least DOMINANT_RATIO times every other face's;
# the others are bystanders. Fitted by scripts/fit_subject_rule.py on lfw-dev identities with a
# single photo, re-framed at random (decision 022).
DOMINANT_RATIO = 1.5


class Embed(str, Enum):
    """The faces of a photo that get a descriptor (an ``int`` instead names one face, 0 = largest)."""

    ALL = "all"  # every face (a caller that compares them all)
    NONE = "none"  # boxes and quality only (``detect``)
    SUBJECT = "subject"  # the most prominent face (search, verify, evaluation): :func:`subject_face`
    DOMINANT = "dominant"  # the enrollment subject, none when it is ambiguous: :func:`dominant_face`


EmbedChoice = Embed | int


def prominence(box: Box, size: tuple[int, int] | None) -> float:
    """How much a face is the subject of a photo: its width times its centrality.

    Centrality is 1 at the centre of the ``(width, height)`` image and falls linearly to 0 at a corner
    (distance from the centre over half the diagonal): photographers frame their subject, bystanders
    are at the edges. Without ``size``, the width alone.
    """
    if size is None:
        return float(box.width)
    width, height = size
    half_diagonal = max(1e-6, float(np.hypot(width, height)) / 2)
    distance = float(np.hypot((box.left + box.right - width) / 2, (box.top + box.bottom - height) / 2))
    return box.width * max(0.0, 1.0 - distance / half_diagonal)


def subject_face(boxes: list[Box], size: tuple[int, int] | None = None) -> int:
    """Index of the photo's subject: its most :func:`prominent <prominence>` face (never refuses).

    Searches and verifications match this face unless told another; enrollment also asks that it
    stand out (:func:`dominant_face`).
    """
    if not boxes:
        raise ValueError("no faces")
    scores = [prominence(box, size) for box in boxes]
    return max(range(len(boxes)), key=lambda i: (scores[i], -i))


def dominant_face(boxes: list[Box], size: tuple[int, int] | None = None) -> int:
    """Index of the face an enrollment photo is of; the others are bystanders.

    That is the most :func:`prominent <prominence>` face (``size``: the image's ``(width, height)``),
    when it is :data:`DOMINANT_RATIO` times as prominent as each other face. Raises
    :class:`AmbiguousSubject` otherwise: two people of similar size and similarly central.
    """
    if not boxes:
        raise ValueError("no faces")
    scores = [prominence(box, size) for box in boxes]
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    if len(order) > 1 and scores[order[0]] < DOMINANT_RATIO * scores[order[1]]:
        subject, other = boxes[order[0]], boxes[order[1]]
        where = "and as central " if size is not None else ""
        raise AmbiguousSubject(
            f"{len(boxes)} faces in the image and none clearly the subject (the most prominent is {subject.width} px "
            f"wide, another {other.width} px {where}nearly as prominent); crop the photo to the subject"
        )
    return order[0]


def to_embed(boxes: list[Box], size: tuple[int, int] | None, choice: EmbedChoice) -> list[int]:
    """Indices of the faces ``choice`` embeds (an index out of range, or an ambiguous enrollment
    photo: none; the act refuses it then, from the boxes)."""
    if isinstance(choice, bool):  # an old ``embed=True`` would read as face 1
        raise TypeError("embed takes an Embed or a face index, not a bool")
    if not boxes or choice is Embed.NONE:
        return []
    if choice is Embed.ALL:
        return list(range(len(boxes)))
    if choice is Embed.SUBJECT:
        return [subject_face(boxes, size)]
    if choice is Embed.DOMINANT:
        try:
            return [dominant_face(boxes, size)]
        except AmbiguousSubject:
            return []
    return [choice] if 0 <= choice < len(boxes) else []


__all__ = ["DOMINANT_RATIO", "Embed", "EmbedChoice", "dominant_face", "prominence", "subject_face", "to_embed"]
