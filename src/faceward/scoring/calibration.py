"""Scores into calibrated evidence: an estimated false match rate and a decision band.

A score is the cosine similarity of two templates. On its own it means
little; the calibration table, measured on genuine and impostor pairs of
identities that the reported evaluations do not use (``scripts/calibrate.py``),
maps it to the false match rate (FMR) for one comparison at that score.
The decision threshold is the lowest score whose measured FMR is at most the
target (default 1e-3). Beyond the last impostor seen, the FMR is reported as
the resolution floor ``1 / impostor_pairs``: an upper bound, not a zero.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np


class Decision(str, enum.Enum):
    """A lead is for human review; nothing here is an identification."""

    LEAD = "lead"
    BELOW_THRESHOLD = "below_threshold"


@dataclass(frozen=True)
class Calibration:
    model_id: str
    scores: np.ndarray  # ascending grid of score thresholds
    fmr: np.ndarray  # impostor fraction with score >= threshold
    fnmr: np.ndarray  # genuine fraction with score < threshold
    impostor_pairs: int
    genuine_pairs: int
    meta: dict[str, Any]

    @property
    def fmr_floor(self) -> float:
        return 1.0 / max(self.impostor_pairs, 1)

    def estimated_fmr(self, score: float) -> float:
        """FMR at ``score``, interpolated on the grid, floored at the measurement's resolution."""
        fmr = float(np.interp(score, self.scores, self.fmr))
        return max(fmr, self.fmr_floor)

    def threshold(self, target_fmr: float) -> float:
        """The lowest grid score whose measured FMR is at most ``target_fmr``."""
        ok = np.nonzero(self.fmr <= target_fmr)[0]
        return float(self.scores[ok[0]]) if len(ok) else float(self.scores[-1])

    def fnmr_at(self, score: float) -> float:
        return float(np.interp(score, self.scores, self.fnmr))

    def decide(self, score: float, target_fmr: float) -> Decision:
        return Decision.LEAD if score >= self.threshold(target_fmr) else Decision.BELOW_THRESHOLD

    @classmethod
    def from_scores(
        cls, model_id: str, genuine: np.ndarray, impostor: np.ndarray, meta: dict[str, Any] | None = None
    ) -> Calibration:
        grid = np.round(np.arange(-0.2, 1.0001, 0.001), 4)
        imp = np.sort(impostor)
        gen = np.sort(genuine)
        fmr = 1.0 - np.searchsorted(imp, grid, side="left") / len(imp)
        fnmr = np.searchsorted(gen, grid, side="left") / len(gen)
        return cls(model_id, grid, fmr, fnmr, len(imp), len(gen), meta or {})

    def to_json(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "impostor_pairs": self.impostor_pairs,
            "genuine_pairs": self.genuine_pairs,
            "meta": self.meta,
            "table": [[float(s), float(f), float(n)] for s, f, n in zip(self.scores, self.fmr, self.fnmr)],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        table = np.asarray(data["table"], dtype=np.float64)
        return cls(
            data["model_id"], table[:, 0], table[:, 1], table[:, 2],
            int(data["impostor_pairs"]), int(data["genuine_pairs"]), dict(data.get("meta", {})),
        )


def calibration_path(model_id: str) -> Path:
    name = model_id.replace("/", "_") + ".json"
    return Path(str(files("faceward") / "data" / f"calibration-{name}"))


@cache
def load_calibration(model_id: str) -> Calibration:
    path = calibration_path(model_id)
    if not path.is_file():
        from faceward.errors import ConfigError

        raise ConfigError(f"no calibration table for model {model_id}; run scripts/calibrate.py")
    return Calibration.from_json(json.loads(path.read_text()))


def fpir_threshold_fmr(target_fpir: float, gallery_size: int) -> float:
    """Per-comparison FMR that keeps the chance of any false match in a gallery of N near ``target_fpir``.

    Assumes independent impostor comparisons: FPIR = 1 - (1 - FMR)^N.
    """
    n = max(gallery_size, 1)
    return float(-np.expm1(np.log1p(-target_fpir) / n))
