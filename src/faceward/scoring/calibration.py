"""Scores into calibrated evidence: an estimated false match rate and a decision band.

A score is the cosine similarity of two templates. On its own it means
little; the calibration table, measured on genuine and impostor pairs of
identities that the reported evaluations do not use (``scripts/calibrate.py``),
maps it to the false match rate (FMR) for one comparison at that score.
The decision threshold is the lowest score whose measured FMR is at most the
target (default 1e-3). Beyond the last impostor seen, the FMR is reported as
the resolution floor ``1 / impostor_pairs``: an upper bound, not a zero.

Two places hold tables: package data for the bundled dlib ResNet
(:func:`load_calibration`), and, for a model of your own, a file beside its
manifest named by the model file's full SHA-256 (:func:`model_table_path`),
written by ``faceward models calibrate``. That file holds one table for plain
and one for mirror-averaged descriptors, so switching ``flip_average`` needs no
new measurement; a re-exported model (another SHA-256) finds no table and runs
uncalibrated until it is measured.
"""

from __future__ import annotations

import enum
import json
import os
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from faceward.vision.recognizer import RecognizerManifest


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


MODEL_TABLE_FORMAT = 1


def model_table_path(folder: Path, sha256: str) -> Path:
    """Where the calibration table of the model with this SHA-256 lies: beside its manifest."""
    return Path(folder) / f"calibration-{sha256}.json"


def flip_key(flip_average: bool) -> str:
    return "flip" if flip_average else "plain"


def write_model_calibration(folder: Path, sha256: str, tables: dict[bool, Calibration]) -> Path:
    """Write the plain and mirror-averaged tables of one model beside its manifest (atomically); returns the path."""
    path = model_table_path(folder, sha256)
    data = {
        "format": MODEL_TABLE_FORMAT,
        "model_sha256": sha256,
        "tables": {flip_key(flip): table.to_json() for flip, table in tables.items()},
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=0) + "\n")
    os.replace(tmp, path)
    return path


def find_model_calibration(folder: Path, sha256: str, *, flip_average: bool) -> Calibration | None:
    """The table measured for this model file (``None`` when it was never calibrated).

    Read again whenever the file changes, so a server picks up a new measurement
    without a restart. A file that names another SHA-256 is refused, not trusted.
    """
    path = model_table_path(folder, sha256)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return None
    return _read_model_table(path, stamp, sha256).get(flip_key(flip_average))


@lru_cache(maxsize=16)
def _read_model_table(path: Path, stamp: int, sha256: str) -> dict[str, Calibration]:
    from faceward.errors import ConfigError

    try:
        data = json.loads(path.read_text())
        if data.get("model_sha256") != sha256:
            raise ConfigError(f"{path} is the calibration of another model file; run `faceward models calibrate` again")
        return {key: Calibration.from_json(table) for key, table in data["tables"].items()}
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ConfigError(f"{path}: unreadable calibration table ({exc}); run `faceward models calibrate` again") from None


def lookup(template_id: str, manifest: RecognizerManifest | None) -> Calibration:
    """The table for templates of ``template_id``: shipped (dlib's ResNet) or measured beside ``manifest``.

    Raises :class:`~faceward.errors.ConfigError` when neither exists; the caller
    decides what an uncalibrated model may still do.
    """
    from faceward.errors import ConfigError

    try:
        return load_calibration(template_id)
    except ConfigError:
        if manifest is None or manifest.source is None:
            raise
    table = find_model_calibration(
        manifest.source.parent, manifest.sha256, flip_average=template_id.endswith("/flip")
    )
    if table is None:
        raise ConfigError(
            f"no calibration table for model {template_id}; run `faceward models calibrate {manifest.source} DIR`"
        )
    return table


def model_card(template_id: str, provenance: dict[str, Any], manifest: RecognizerManifest | None) -> dict[str, Any]:
    """What a tenant and an operator are shown of a model: its provenance and how its scores are calibrated."""
    from faceward.errors import ConfigError

    try:
        table: Calibration | None = lookup(template_id, manifest)
    except ConfigError:
        table = None
    calibration = None
    if table is not None:
        calibration = {
            "impostor_pairs": table.impostor_pairs, "genuine_pairs": table.genuine_pairs,
            "fmr_resolution": table.fmr_floor, "source": table.meta.get("source"),
            "measured_at": table.meta.get("measured_at"),
        }
    return {"template_id": template_id, **provenance, "calibrated": table is not None, "calibration": calibration}


def fpir_threshold_fmr(target_fpir: float, gallery_size: int) -> float:
    """Per-comparison FMR that keeps the chance of any false match in a gallery of N near ``target_fpir``.

    Assumes independent impostor comparisons: FPIR = 1 - (1 - FMR)^N.
    """
    n = max(gallery_size, 1)
    return float(-np.expm1(np.log1p(-target_fpir) / n))
