"""Scores into calibrated evidence: an estimated false match rate and a decision band.

A score is the cosine similarity of two templates. On its own it means
little; the calibration table, measured on genuine and impostor pairs of
identities that the reported evaluations do not use (``scripts/calibrate.py``),
maps it to the false match rate (FMR) for one comparison at that score.
The decision threshold is the lowest score whose measured FMR is at most the
target (default 1e-3); a table measured by ``faceward models calibrate`` also
holds a one-sided 95% upper confidence bound of the FMR at each score
(:func:`fmr_upper_bound`), and its threshold is the lowest score whose *bound*
is at most the target, so a threshold placed on a handful of impostor scores,
or on the scores of a few look-alike people, errs strict. Beyond the last
impostor seen, the FMR is reported as the resolution floor
``1 / impostor_pairs``: an upper bound, not a zero.

Two places hold tables: package data for the bundled dlib ResNet
(:func:`load_calibration`), and, for a model of your own, a file beside its
manifest named by the model file's full SHA-256 and by its alignment spec
(:func:`model_table_path`), written by ``faceward models calibrate``. That file
holds one table for plain and one for mirror-averaged descriptors, so switching
``flip_average`` needs no new measurement; a re-exported model (another SHA-256),
or the same model fed chips cut or normalised another way (another template,
input size, normalisation, or a new aligner), finds no table and runs
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
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    from faceward.vision.manifest import RecognizerManifest


class Decision(str, enum.Enum):
    """A lead is for human review; nothing here is an identification."""

    LEAD = "lead"
    BELOW_THRESHOLD = "below_threshold"


GRID = np.round(np.arange(-0.2, 1.0001, 0.001), 4)  # the score thresholds every table is measured on
CONFIDENCE_Z = 1.645  # one-sided 95%


def poisson_upper(count: np.ndarray | float, z: float = CONFIDENCE_Z) -> np.ndarray:
    """One-sided upper confidence bound of a Poisson mean given an observed ``count`` (Wilson-Hilferty).

    Within 2% of the exact bound from one count up; ``count`` 0 gives 3.0 at 95%
    (the "rule of three"). Counts need not be integers (effective counts).
    """
    k = np.asarray(count, dtype=np.float64) + 1.0
    return k * (1.0 - 1.0 / (9.0 * k) + z / (3.0 * np.sqrt(k))) ** 3


def fmr_upper_bound(counts: np.ndarray, pairs: np.ndarray, z: float = CONFIDENCE_Z) -> np.ndarray:
    """A one-sided upper confidence bound of the FMR at each threshold, with pairs clustered by identity.

    ``counts[k, t]``: impostor pairs with a member of identity ``k`` scoring at or above
    threshold ``t``; ``pairs[k]``: all impostor pairs with a member of ``k`` (so every pair
    is counted twice, once per identity). Impostor pairs are not independent: every image
    is in hundreds of them, and one person who looks like many others lifts the tail on his
    own. The variance is the two-way clustered one (each pair lies in two clusters):
    ``(sum_k (c_k - p m_k)^2 - M p (1 - p)) / M^2``, at least the binomial ``p (1 - p) / M``.
    Its ratio to the binomial is the design effect ``d``, and the bound is the Poisson bound
    of the effective count ``C / d`` over ``M / d`` effective pairs: a measurement worth
    ``C / d`` independent false matches (``d`` is about 1 when false matches are spread evenly).
    """
    counts = np.asarray(counts, dtype=np.float64)
    m = np.asarray(pairs, dtype=np.float64)
    total = m.sum() / 2.0
    if total <= 0:
        raise ValueError("no impostor pairs")
    hits = counts.sum(axis=0) / 2.0
    p = hits / total
    pair_variance = p * (1.0 - p) * total  # each pair's own variance, counted twice in the cluster sums
    clustered = (((counts - p[None, :] * m[:, None]) ** 2).sum(axis=0) - pair_variance) / total**2
    binomial = np.maximum(p * (1.0 - p), 1.0 / total) / total
    design = np.maximum(1.0, clustered / binomial)
    return cast(np.ndarray, np.minimum(1.0, poisson_upper(hits / design, z) * design / total))


@dataclass(frozen=True)
class Calibration:
    model_id: str
    scores: np.ndarray  # ascending grid of score thresholds
    fmr: np.ndarray  # impostor fraction with score >= threshold
    fnmr: np.ndarray  # genuine fraction with score < threshold
    impostor_pairs: int
    genuine_pairs: int
    meta: dict[str, Any]
    fmr_upper: np.ndarray | None = None  # 95% upper bound of the FMR on the grid; decisions use it when present

    @property
    def fmr_floor(self) -> float:
        return 1.0 / max(self.impostor_pairs, 1)

    def estimated_fmr(self, score: float) -> float:
        """FMR at ``score``, interpolated on the grid, floored at the measurement's resolution."""
        fmr = float(np.interp(score, self.scores, self.fmr))
        return max(fmr, self.fmr_floor)

    def threshold(self, target_fmr: float) -> float:
        """The lowest grid score whose measured FMR (its upper bound, when the table has one) is at most ``target_fmr``."""
        fmr = self.fmr if self.fmr_upper is None else self.fmr_upper
        ok = np.nonzero(fmr <= target_fmr)[0]
        return float(self.scores[ok[0]]) if len(ok) else float(self.scores[-1])

    def fmr_upper_at(self, score: float) -> float | None:
        """The 95% upper bound of the FMR at ``score`` (``None`` for a table without one)."""
        return None if self.fmr_upper is None else float(np.interp(score, self.scores, self.fmr_upper))

    def fnmr_at(self, score: float) -> float:
        return float(np.interp(score, self.scores, self.fnmr))

    def decide(self, score: float, target_fmr: float) -> Decision:
        return Decision.LEAD if score >= self.threshold(target_fmr) else Decision.BELOW_THRESHOLD

    @classmethod
    def from_scores(
        cls, model_id: str, genuine: np.ndarray, impostor: np.ndarray, meta: dict[str, Any] | None = None,
        fmr_upper: np.ndarray | None = None,
    ) -> Calibration:
        """The table of these scores on :data:`GRID`; ``fmr_upper``, on the same grid, from :func:`fmr_upper_bound`."""
        grid = GRID
        imp = np.sort(impostor)
        gen = np.sort(genuine)
        fmr = 1.0 - np.searchsorted(imp, grid, side="left") / len(imp)
        fnmr = np.searchsorted(gen, grid, side="left") / len(gen)
        if fmr_upper is not None:
            fmr_upper = np.maximum.accumulate(np.maximum(np.asarray(fmr_upper, np.float64), fmr)[::-1])[::-1]
            if fmr_upper.shape != grid.shape:
                raise ValueError(f"fmr_upper has {fmr_upper.shape} values, the grid {grid.shape}")
        return cls(model_id, grid, fmr, fnmr, len(imp), len(gen), meta or {}, fmr_upper)

    def to_json(self) -> dict[str, Any]:
        rows = zip(self.scores, self.fmr, self.fnmr, self.fmr if self.fmr_upper is None else self.fmr_upper)
        return {
            "model_id": self.model_id,
            "impostor_pairs": self.impostor_pairs,
            "genuine_pairs": self.genuine_pairs,
            "meta": self.meta,
            # score, FMR, FNMR (and the FMR's upper bound, a fourth column, when measured)
            "table": [[float(s), float(f), float(n)] + ([] if self.fmr_upper is None else [float(u)])
                      for s, f, n, u in rows],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        table = np.asarray(data["table"], dtype=np.float64)
        return cls(
            data["model_id"], table[:, 0], table[:, 1], table[:, 2],
            int(data["impostor_pairs"]), int(data["genuine_pairs"]), dict(data.get("meta", {})),
            table[:, 3].copy() if table.shape[1] > 3 else None,
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


MODEL_TABLE_FORMAT = 2  # 2: named and checked by the alignment spec too; 1's tables are not read


def model_table_path(folder: Path, sha256: str, alignment: str) -> Path:
    """Where the calibration table of this model file, cut and normalised this way, lies: beside its manifest.

    ``alignment`` is the manifest's :attr:`~faceward.vision.manifest.RecognizerManifest.alignment_sha256`
    (template, input size, colour order, normalisation and the aligner's version): the same
    weights fed other chips give other scores, so a table measured before such a change is
    not found afterwards, and the model runs uncalibrated until it is measured again.
    """
    return Path(folder) / f"calibration-{sha256}-{alignment[:12]}.json"


def flip_key(flip_average: bool) -> str:
    return "flip" if flip_average else "plain"


def write_model_calibration(folder: Path, sha256: str, tables: dict[bool, Calibration], *, alignment: str) -> Path:
    """Write the plain and mirror-averaged tables of one model beside its manifest (atomically); returns the path."""
    path = model_table_path(folder, sha256, alignment)
    data = {
        "format": MODEL_TABLE_FORMAT,
        "model_sha256": sha256,
        "alignment_sha256": alignment,
        "tables": {flip_key(flip): table.to_json() for flip, table in tables.items()},
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=0) + "\n")
    os.replace(tmp, path)
    return path


def find_model_calibration(folder: Path, sha256: str, *, flip_average: bool, alignment: str) -> Calibration | None:
    """The table measured for this model file and alignment (``None`` when it was never calibrated).

    Read again whenever the file changes, so a server picks up a new measurement
    without a restart. A file that names another SHA-256 or alignment is refused, not trusted.
    """
    path = model_table_path(folder, sha256, alignment)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return None
    return _read_model_table(path, stamp, sha256, alignment).get(flip_key(flip_average))


@lru_cache(maxsize=16)
def _read_model_table(path: Path, stamp: int, sha256: str, alignment: str) -> dict[str, Calibration]:
    from faceward.errors import ConfigError

    try:
        data = json.loads(path.read_text())
        if data.get("model_sha256") != sha256:
            raise ConfigError(f"{path} is the calibration of another model file; run `faceward models calibrate` again")
        if data.get("alignment_sha256") != alignment:
            raise ConfigError(f"{path} was measured on chips aligned another way; run `faceward models calibrate` again")
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
        manifest.source.parent, manifest.sha256, flip_average=template_id.endswith("/flip"),
        alignment=manifest.alignment_sha256,
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
