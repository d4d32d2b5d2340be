"""Calibrated scores and decisions."""

from faceward.scoring.calibration import Calibration, Decision, fpir_threshold_fmr, load_calibration

__all__ = ["Calibration", "Decision", "fpir_threshold_fmr", "load_calibration"]
