"""The ``eval pairs`` and ``eval ident`` reports over cached analyses."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from faceward.errors import InvalidInput
from faceward.evaluation.datasets import Pair
from faceward.evaluation.metrics import fnir_at_fpir, tar_at_far, ten_fold_accuracy
from faceward.evaluation.runs import ImageAnalysis, Variant
from faceward.scoring import Calibration

HELD_OUT_TARGETS = (1e-2, 1e-3)
# Every cross-identity pair is scored: quadratic. 20,000 images are 200 M pairs, about a minute here.
MAX_EVERY_IMPOSTOR_IMAGES = 20_000


def check_pairs_protocol(pairs: list[Pair]) -> None:
    """The 10-fold protocol needs enough pairs of both kinds; say so before any image is analysed."""
    if len(pairs) < 10 or all(p.same for p in pairs) or not any(p.same for p in pairs):
        raise InvalidInput("the 10-fold protocol needs at least 10 pairs, with both same and different pairs")


def pairs_report(
    pairs: list[Pair], images: Path, analyses: dict[Path, ImageAnalysis], variant: Variant,
    calibration: Calibration | None = None,
) -> dict[str, Any]:
    """The 10-fold figures; with the model's ``calibration``, also how its thresholds hold on these (unseen) pairs."""
    check_pairs_protocol(pairs)
    scores = np.zeros(len(pairs))
    same = np.array([p.same for p in pairs])
    for i, pair in enumerate(pairs):
        a = variant.descriptor(analyses[images / pair.a])
        b = variant.descriptor(analyses[images / pair.b])
        # An unreadable image scores as a non-match: the pair still counts.
        scores[i] = float(a @ b) if a is not None and b is not None else -1.0
    used = {images / p.a for p in pairs} | {images / p.b for p in pairs}
    every: list[dict[str, Any]] | None = None
    if calibration is not None and len(used) > MAX_EVERY_IMPOSTOR_IMAGES:
        every = [{"skipped": f"{len(used)} images, over {MAX_EVERY_IMPOSTOR_IMAGES:,}: every pair would take too long"}]
    elif calibration is not None:
        every = every_impostor_check(pairs, images, analyses, variant, calibration)
    no_face = sum(1 for path in used if not analyses[path].hog_found and not (variant.mmod_fallback and analyses[path].mmod))
    mean, std = ten_fold_accuracy(scores, same)
    return {
        "variant": variant.name,
        "pairs": len(pairs),
        "images": len(used),
        "accuracy": round(mean, 4),
        "accuracy_std": round(std, 4),
        "tar_at_far_1e-2": round(tar_at_far(scores, same, 1e-2), 4),
        "tar_at_far_1e-3": round(tar_at_far(scores, same, 1e-3), 4),
        "no_face_rate": round(no_face / len(used), 4),
        "unreadable": sum(1 for path in used if analyses[path].error),
        **({"calibration_check": held_out_check(scores, same, calibration)} if calibration is not None else {}),
        **({"calibration_check_every_impostor": every} if every is not None else {}),
    }


def held_out_check(scores: np.ndarray, same: np.ndarray, calibration: Calibration) -> list[dict[str, Any]]:
    """At each target FMR, the table's threshold and the false-match rate it gives on pairs it was not fitted on.

    The observed rate is resolved only to 1 / impostor pairs here (``resolution``): a count of
    false matches is reported beside it, with the count the target predicts on this many pairs
    and the chance of seeing at least as many were the target exactly right (Poisson), so that
    three false matches where 1.3 were expected read as what they are.
    """
    impostor, genuine = scores[~same], scores[same]
    rows = []
    for target in HELD_OUT_TARGETS:
        threshold = calibration.threshold(target)
        false_matches = int((impostor >= threshold).sum())
        expected = target * len(impostor)
        below = sum(math.exp(-expected) * expected**k / math.factorial(k) for k in range(false_matches))
        rows.append({
            "target_fmr": target, "threshold": round(threshold, 4), "impostor_pairs": len(impostor),
            "false_matches": false_matches, "observed_fmr": round(false_matches / max(len(impostor), 1), 6),
            "resolution": round(1 / max(len(impostor), 1), 6), "expected_false_matches": round(expected, 2),
            "chance_of_at_least_as_many": round(max(0.0, 1.0 - below), 4),
            "tar": round(float((genuine >= threshold).mean()), 4) if len(genuine) else None,
        })
    return rows


def every_impostor_check(
    pairs: list[Pair], images: Path, analyses: dict[Path, ImageAnalysis], variant: Variant, calibration: Calibration,
    *, block: int = 1024,
) -> list[dict[str, Any]]:
    """The held-out check on every cross-identity pair of the pairs' images, not only the listed ones.

    The listed impostor pairs resolve a rate only to one pair in their number (1 / 1,332 on
    lfw-dev: 0.75x a 1e-3 target); every two images of different identities (the folder name
    before the first ``/``) that the pairs use are impostors the table never saw either, about
    four orders of magnitude more. Scored in blocks of rows, so memory stays flat.
    """
    names = sorted({p.a for p in pairs} | {p.b for p in pairs})
    kept: list[tuple[str, np.ndarray]] = []
    for name in names:
        vector = variant.descriptor(analyses[images / name])
        if vector is not None:
            kept.append((name, vector))
    if len(kept) < 2:
        return []
    vectors = np.stack([v for _, v in kept]).astype(np.float32)
    _, owners = np.unique([name.split("/")[0] for name, _ in kept], return_inverse=True)
    thresholds = np.array([calibration.threshold(t) for t in HELD_OUT_TARGETS])
    hits = np.zeros(len(thresholds), dtype=np.int64)
    impostors = 0
    for start in range(0, len(vectors), block):
        scores = vectors[start : start + block] @ vectors.T
        rows = np.arange(start, min(start + block, len(vectors)))
        mask = (owners[rows][:, None] != owners[None, :]) & (np.arange(len(vectors))[None, :] > rows[:, None])
        chosen = scores[mask]
        impostors += int(mask.sum())
        hits += (chosen[:, None] >= thresholds[None, :]).sum(axis=0)
    return [
        {"target_fmr": target, "threshold": round(float(threshold), 4), "impostor_pairs": impostors,
         "false_matches": int(count), "observed_fmr": float(f"{count / impostors:.4g}"),
         "ratio_to_target": round(count / impostors / target, 3)}
        for target, threshold, count in zip(HELD_OUT_TARGETS, thresholds, hits)
    ]


def ident_report(identities: dict[str, list[Path]], analyses: dict[Path, ImageAnalysis], variant: Variant) -> dict[str, Any]:
    """Enroll the first image of each identity with 2+ images; probe with the rest; single-image identities are non-mated."""
    gallery_names, gallery = [], []
    mated: list[tuple[int, np.ndarray]] = []
    nonmated: list[np.ndarray] = []
    for name, files in identities.items():
        vectors = [variant.descriptor(analyses[f]) for f in files]
        if len(files) == 1:
            if vectors[0] is not None:
                nonmated.append(vectors[0])
            continue
        if vectors[0] is None:
            continue
        gallery_names.append(name)
        gallery.append(vectors[0])
        mated.extend((len(gallery) - 1, v) for v in vectors[1:] if v is not None)
    g = np.stack(gallery)
    mated_scores = np.stack([v for _, v in mated]) @ g.T
    truth = np.array([i for i, _ in mated])
    top = mated_scores.argmax(axis=1)
    correct = top == truth
    mated_top = mated_scores.max(axis=1)
    nonmated_top = (np.stack(nonmated) @ g.T).max(axis=1) if nonmated else np.zeros(0)
    report: dict[str, Any] = {
        "variant": variant.name,
        "gallery": len(gallery),
        "mated_probes": len(mated),
        "nonmated_probes": len(nonmated),
        "rank1": round(float(np.mean(correct)), 4),
    }
    if len(nonmated):
        for fpir in (0.01, 0.001):
            result = fnir_at_fpir(mated_top, correct, nonmated_top, fpir)
            report[f"fnir_at_fpir_{fpir:g}"] = round(result.fnir, 4)
            report[f"threshold_at_fpir_{fpir:g}"] = round(result.threshold, 4)
    return report
