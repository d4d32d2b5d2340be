"""Scoring for a model that ships no calibration table."""

from __future__ import annotations

from dataclasses import dataclass

from faceward.scoring.calibration import Calibration, Decision

UNCALIBRATED_WARNING = (
    "uncalibrated model: no calibration table for {model} (`faceward models calibrate` measures one), so the "
    "decision uses the threshold in its manifest ({threshold}) and no false match rate can be estimated"
)


@dataclass(frozen=True)
class Uncalibrated:
    """Scoring for a model with no calibration table: a fixed score threshold from its manifest, no FMR.

    Same ``threshold`` / ``estimated_fmr`` / ``decide`` verbs as :class:`Calibration`, so the
    decision code is shared; ``estimated_fmr`` is ``None`` (unknown), never a guess
    borrowed from another model's table, and every result carries a warning.
    """

    model_id: str
    score_threshold: float

    def threshold(self, target_fmr: float) -> float:
        return self.score_threshold

    def estimated_fmr(self, score: float) -> float | None:
        return None

    @property
    def fmr_floor(self) -> float | None:
        return None  # nothing was measured

    def decide(self, score: float, target_fmr: float) -> Decision:
        return Decision.LEAD if score >= self.score_threshold else Decision.BELOW_THRESHOLD

    @property
    def warning(self) -> str:
        return UNCALIBRATED_WARNING.format(model=self.model_id, threshold=self.score_threshold)


Scoring = Calibration | Uncalibrated


__all__ = ["UNCALIBRATED_WARNING", "Scoring", "Uncalibrated"]
