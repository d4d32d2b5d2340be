"""``faceward models``: a recognizer of your own, its provenance and its calibration."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from faceward.cli.common import JsonOpt, command_group, emit_fields, emit_json, friendly, out
from faceward.cli.evaluate import EngineOpt, _analyse, _engine
from faceward.errors import InvalidInput
from faceward.evaluation.calibration import (
    MIN_IDENTITIES,
    calibration_identities,
    check_enough,
    check_images,
    pair_scores,
)
from faceward.evaluation.runs import Variant
from faceward.scoring import Calibration, model_card, write_model_calibration
from faceward.settings import Engine
from faceward.vision.engine import FLIP_SUFFIX

models_app = command_group(help="Your own recognizer: its provenance and calibration.")
ManifestArg = typer.Argument(help="The model's manifest (JSON): file, SHA-256, template, licence.")
TARGETS = (1e-2, 1e-3, 1e-4)


@models_app.command("show")
def show(manifest: Annotated[Path, ManifestArg], as_json: Annotated[bool, JsonOpt] = False) -> None:
    """The model's provenance (licence, training data, intended use) and whether faceward calibrated it."""
    _show(manifest, as_json)


@friendly
def _show(manifest: Path, as_json: bool) -> None:
    engine = _engine(model=manifest)
    emit_fields(model_card(engine.template_id, engine.provenance, engine.manifest), as_json)


@models_app.command("calibrate")
def calibrate(
    manifest: Annotated[Path, ManifestArg],
    folder: Annotated[Path, typer.Argument(help="A folder per identity (or a folder with images/); "
                                                "identities its pairs.csv names are held out.")],
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 0,
    engine: Annotated[Optional[Engine], EngineOpt] = None,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Measure the model's genuine and impostor scores on your own labelled photos; write its calibration table.

    From then on searches and verifies with this model report calibrated: true, an
    estimated FMR and decisions by FACEWARD_TARGET_FMR. The table lies beside the
    manifest, named by the model file's SHA-256.
    """
    _calibrate(manifest, folder, workers, engine, as_json)


@friendly
def _calibrate(manifest: Path, folder: Path, workers: int, engine: Engine | None, as_json: bool) -> None:
    face = _engine(engine, manifest)
    model = face.manifest
    if model is None or model.source is None:  # unreachable: a path was given
        raise InvalidInput("a manifest is required")
    model.verify()  # the file's SHA-256 before any image is read
    identities, held_out = calibration_identities(folder)
    if len(identities) < MIN_IDENTITIES:
        raise InvalidInput(
            f"{folder} holds {len(identities)} identities (held out by pairs.csv: {held_out}); calibration needs "
            f"at least {MIN_IDENTITIES}, a folder each"
        )
    paths = [f for files in identities.values() for f in files]
    check_images(len(paths))
    analyses = _analyse(paths, engine, workers, as_json, model=manifest)
    meta: dict[str, Any] = {
        "source": str(folder.resolve()), "identities": len(identities), "held_out_identities": held_out,
        "engine": face.options.engine.value, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    tables: dict[bool, Calibration] = {}
    for flip in (False, True):
        template_id = model.model_id + (FLIP_SUFFIX if flip else "")
        scores = pair_scores(identities, analyses, Variant(template_id, flip_average=flip, mmod_fallback=True))
        check_enough(scores)
        tables[flip] = Calibration.from_scores(
            template_id, scores.genuine, scores.impostor, {**meta, "images": scores.images}, scores.fmr_upper()
        )
    path = write_model_calibration(model.source.parent, model.sha256, tables, alignment=model.alignment_sha256)
    used = tables[face.flip_average]

    def rows(table: Calibration) -> list[dict[str, Any]]:
        # The threshold is where the FMR's 95% upper bound meets the target; the point estimate there is lower.
        return [{"target_fmr": t, "score": table.threshold(t), "fnmr": round(table.fnmr_at(table.threshold(t)), 4),
                 "fmr": float(f"{table.estimated_fmr(table.threshold(t)):.3g}"),
                 "fmr_upper_95": float(f"{table.fmr_upper_at(table.threshold(t)) or 0.0:.3g}"),
                 # False: too few impostor pairs to bound the FMR this low; the threshold is then the top score
                 "resolved": (table.fmr_upper_at(table.threshold(t)) or 0.0) <= t}
                for t in TARGETS]

    report = {
        "table": str(path), "model_id": model.model_id, "template_id": face.template_id,
        "identities": len(identities), "held_out_identities": held_out, "images": used.meta["images"],
        "genuine_pairs": used.genuine_pairs, "impostor_pairs": used.impostor_pairs, "fmr_resolution": used.fmr_floor,
        "thresholds": rows(used),
        # Both ways of reading the model, on these held-out identities: the data to set the manifest's
        # flip_average on (never the pairs an evaluation reports).
        "flip_average": face.flip_average,
        "by_flip_average": {str(flip).lower(): rows(table) for flip, table in tables.items()},
    }
    if as_json:
        emit_json(report)
        return
    out.print(
        f"{model.model_id}: {used.impostor_pairs:,} impostor / {used.genuine_pairs:,} genuine pairs from "
        f"{report['images']} images of {len(identities)} identities ({held_out} held out by pairs.csv); "
        f"FMR resolution {used.fmr_floor:.1e}", markup=False,
    )
    for row in report["thresholds"]:
        out.print(f"  target FMR {row['target_fmr']:g}: score {row['score']:.3f}, FNMR {row['fnmr']:.3f} "
                  f"(measured FMR {row['fmr']:.2g}, 95% upper bound {row['fmr_upper_95']:.2g})", markup=False)
    other = report["by_flip_average"][str(not face.flip_average).lower()]
    out.print(f"  with flip_average {str(not face.flip_average).lower()}: FNMR "
              + ", ".join(f"{row['fnmr']:.3f} at FMR {row['target_fmr']:g}" for row in other), markup=False)
    out.print(f"calibration table: {path}", markup=False)
