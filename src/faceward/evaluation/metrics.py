"""Verification and identification metrics, computed the way LFW and NIST FRTE report them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]


def best_threshold(scores: Floats, same: NDArray[np.bool_]) -> float:
    """Threshold that maximises accuracy on these pairs (midpoints between sorted scores)."""
    order = np.sort(np.unique(scores))
    candidates = np.concatenate([[order[0] - 1e-6], (order[:-1] + order[1:]) / 2, [order[-1] + 1e-6]])
    accuracy = [(np.mean((scores >= t) == same), -abs(t)) for t in candidates]
    return float(candidates[int(np.argmax([a for a, _ in accuracy]))])


def ten_fold_accuracy(scores: Floats, same: NDArray[np.bool_], *, seed: int = 0, folds: int = 10) -> tuple[float, float]:
    """LFW protocol: shuffle with a fixed seed, ten folds; threshold from nine, accuracy on the tenth."""
    order = np.random.default_rng(seed).permutation(len(scores))
    parts = np.array_split(order, folds)
    results = []
    for i, test in enumerate(parts):
        train = np.concatenate([p for j, p in enumerate(parts) if j != i])
        t = best_threshold(scores[train], same[train])
        results.append(float(np.mean((scores[test] >= t) == same[test])))
    return float(np.mean(results)), float(np.std(results))


def tar_at_far(scores: Floats, same: NDArray[np.bool_], far: float) -> float:
    """True accept rate at the threshold where at most ``far`` of impostor pairs are accepted."""
    impostor = np.sort(scores[~same])[::-1]
    allowed = int(np.floor(far * len(impostor)))
    threshold = impostor[allowed] if allowed < len(impostor) else -np.inf
    return float(np.mean(scores[same] > threshold))


@dataclass(frozen=True)
class OpenSet:
    fnir: float
    threshold: float


def fnir_at_fpir(mated_top: Floats, mated_rank1_correct: NDArray[np.bool_], nonmated_top: Floats, fpir: float) -> OpenSet:
    """Rank-1 FNIR at the threshold where ``fpir`` of non-mated searches return a candidate.

    A mated search counts as a hit only when its true mate is at rank 1 and scores at or above the threshold.
    """
    ranked = np.sort(nonmated_top)[::-1]
    allowed = int(np.floor(fpir * len(ranked)))
    threshold = float(ranked[allowed]) if allowed < len(ranked) else float("-inf")
    hits = mated_rank1_correct & (mated_top > threshold)
    return OpenSet(float(1.0 - np.mean(hits)), threshold)
