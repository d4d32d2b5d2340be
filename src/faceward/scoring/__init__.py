"""Calibrated scores and decisions."""

from faceward.scoring.calibration import (
    Calibration,
    Decision,
    find_model_calibration,
    fpir_threshold_fmr,
    load_calibration,
    lookup,
    model_card,
    model_table_path,
    write_model_calibration,
)
from faceward.scoring.uncalibrated import Scoring, Uncalibrated

__all__ = [
    "Calibration", "Decision", "Scoring", "Uncalibrated", "find_model_calibration", "fpir_threshold_fmr",
    "load_calibration", "lookup", "model_card", "model_table_path", "write_model_calibration",
]
