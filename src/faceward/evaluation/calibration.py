"""The calibration protocol: genuine and impostor score distributions from a folder per identity.

One protocol for the bundled model (``scripts/calibrate.py``) and for models of
your own (``faceward models calibrate``):

- identities named in the folder's ``pairs.csv``, when it has one, are held
  out, so a table is never fitted on the pairs ``faceward eval pairs`` reports;
- only faces a detector found count (the central-region stand-in LFW's pair
  protocol needs is not a face anyone enrolls);
- every same-identity pair of images is a genuine pair, every cross-identity
  pair an impostor pair (all of them, not a sample);
- the FMR's 95% upper bound is measured with pairs clustered by identity
  (:func:`faceward.scoring.calibration.fmr_upper_bound`), and decisions use it.

Too little data is refused with the reason, before any table is written: an
FMR measured on N impostor pairs is resolved only to 1/N, so placing the
default threshold (FMR 1e-3) on at least ten impostor scores needs 10,000
pairs; the genuine side and the number of identities bound how far the table
speaks for more than a handful of people.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceward.errors import InvalidInput
from faceward.evaluation.datasets import identity_folders, read_pairs
from faceward.evaluation.runs import ImageAnalysis, Variant
from faceward.scoring.calibration import GRID, fmr_upper_bound

MIN_IDENTITIES = 20
MIN_GENUINE_PAIRS = 20
MIN_IMPOSTOR_PAIRS = 10_000  # ten impostor scores at or above the FMR 1e-3 threshold
MAX_IMAGES = 6_000  # 18M impostor scores (72 MB) held at once


@dataclass(frozen=True)
class PairScores:
    """Scores of every genuine and impostor pair among the images where a face was found."""

    genuine: np.ndarray
    impostor: np.ndarray
    identities: int  # identities with at least one usable image
    images: int  # images with a detected face
    # Per identity: impostor pairs with a member of it at or above each GRID score, and all of its impostor pairs.
    cluster_counts: np.ndarray | None = None
    cluster_pairs: np.ndarray | None = None

    def fmr_upper(self) -> np.ndarray | None:
        """The FMR's 95% upper bound on the calibration grid, pairs clustered by identity (``None``: no clusters)."""
        if self.cluster_counts is None or self.cluster_pairs is None or not len(self.impostor):
            return None
        return fmr_upper_bound(self.cluster_counts, self.cluster_pairs)


def calibration_identities(folder: Path) -> tuple[dict[str, list[Path]], int]:
    """The folder's identities minus those its ``pairs.csv`` names (when it has one); and how many were held out."""
    identities = identity_folders(folder)
    if not (folder / "pairs.csv").is_file():
        return identities, 0
    pairs = read_pairs(folder)
    named = {p.a.split("/")[0] for p in pairs} | {p.b.split("/")[0] for p in pairs}
    kept = {name: files for name, files in identities.items() if name not in named}
    return kept, len(identities) - len(kept)


def pair_scores(identities: dict[str, list[Path]], analyses: dict[Path, ImageAnalysis], variant: Variant) -> PairScores:
    """Every genuine and impostor score among the detected faces of ``identities`` (descriptors from ``variant``)."""
    owners: list[int] = []
    vectors: list[np.ndarray] = []
    for owner, files in enumerate(identities.values()):
        for path in files:
            analysis = analyses[path]
            if not (analysis.hog_found or analysis.mmod is not None):
                continue  # calibrate on detected faces only
            vector = variant.descriptor(analysis)
            if vector is not None:
                owners.append(owner)
                vectors.append(vector)
    if not vectors:
        return PairScores(np.zeros(0), np.zeros(0), 0, 0)
    v = np.stack(vectors).astype(np.float32)
    o = np.asarray(owners)
    scores = v @ v.T
    upper = np.triu(np.ones_like(scores, dtype=bool), k=1)
    same = o[:, None] == o[None, :]
    counts, pairs = _clustered(scores, same, o)
    return PairScores(scores[upper & same], scores[upper & ~same], len(set(owners)), len(vectors), counts, pairs)


def _clustered(scores: np.ndarray, same: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per identity: its impostor pairs at or above each GRID score, and its impostor pairs in all."""
    _, cluster = np.unique(owners, return_inverse=True)
    clusters = int(cluster.max()) + 1
    counts = np.zeros((clusters, len(GRID)), dtype=np.int64)
    pairs = np.zeros(clusters, dtype=np.int64)
    for row in range(len(scores)):  # one image at a time: memory stays at one row of the grid per image
        impostor = np.sort(scores[row][~same[row]])
        counts[cluster[row]] += len(impostor) - np.searchsorted(impostor, GRID, side="left")
        pairs[cluster[row]] += len(impostor)
    return counts, pairs


def check_images(count: int) -> None:
    """Refuse a folder too large to score every pair of, before any image is analysed."""
    if count > MAX_IMAGES:
        raise InvalidInput(
            f"{count} images: calibration scores every pair of images, at most {MAX_IMAGES:,}; pass a sample"
        )


def check_enough(scores: PairScores) -> None:
    """Refuse, with the reason, a measurement too small to calibrate on."""
    if scores.identities < MIN_IDENTITIES:
        raise InvalidInput(
            f"faces found for {scores.identities} identities; calibration needs at least {MIN_IDENTITIES} "
            "(a folder per identity), or the table speaks for a handful of people only"
        )
    if len(scores.genuine) < MIN_GENUINE_PAIRS:
        raise InvalidInput(
            f"{len(scores.genuine)} genuine pairs (two images of the same identity); calibration needs at least "
            f"{MIN_GENUINE_PAIRS} to say anything about missed matches: add identities with several images"
        )
    if len(scores.impostor) < MIN_IMPOSTOR_PAIRS:
        raise InvalidInput(
            f"{len(scores.impostor):,} impostor pairs resolve a false match rate only to "
            f"{1 / max(len(scores.impostor), 1):.1e}; calibration needs at least {MIN_IMPOSTOR_PAIRS:,} "
            "(about 142 images of different identities) to place the FMR 1e-3 threshold"
        )


__all__ = [
    "MAX_IMAGES", "MIN_GENUINE_PAIRS", "MIN_IDENTITIES", "MIN_IMPOSTOR_PAIRS", "PairScores", "calibration_identities",
    "check_enough", "check_images", "pair_scores",
]
