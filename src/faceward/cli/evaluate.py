"""``faceward eval``: accuracy on labelled folders, with the pipeline the settings describe."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from faceward.cli.progress import progress_bar
from faceward.cli.common import JsonOpt, command_group, emit_fields, emit_json, friendly, out, settings
from faceward.evaluation.datasets import identity_folders, read_pairs
from faceward.evaluation.reports import check_pairs_protocol, ident_report, pairs_report
from faceward.evaluation.runs import BASELINE, JITTER, VARIANTS, ImageAnalysis, Variant, analyse
from faceward.scoring import Calibration
from faceward.settings import Engine
from faceward.vision.engine import EngineOptions, FaceEngine

eval_app = command_group(help="Measure accuracy on labelled face folders.")
EngineOpt = typer.Option("--engine", help="Descriptor runtime (default from FACEWARD_ENGINE).")
BaselineOpt = typer.Option("--baseline", help="Score the face_recognition-style pipeline instead.")
AllOpt = typer.Option("--all-variants", help="Report every pipeline variant.")
ModelOpt = typer.Option("--model", help="Recognizer manifest (JSON) of your own model (default: FACEWARD_RECOGNIZER_MANIFEST).")


def _engine(engine: Engine | None = None, model: Path | None = None) -> FaceEngine:
    """The engine the settings describe, on ``model`` when given (models load on first use only)."""
    s = settings(engine=engine, recognizer_manifest=model.resolve() if model else None)
    return FaceEngine(EngineOptions.from_settings(s))


def _variant(baseline: bool, model: Path | None = None) -> Variant:
    if baseline:
        return BASELINE
    face = _engine(model=model)
    return Variant(face.template_id if face.manifest else "faceward", face.flip_average, face.options.detector_fallback)


def _scoring(model: Path | None) -> Calibration | None:
    """The calibration table searches would use with this model (``None`` when it has none)."""
    from faceward.errors import ConfigError
    from faceward.scoring.calibration import lookup

    face = _engine(model=model)
    try:
        return lookup(face.template_id, face.manifest)
    except ConfigError:
        return None


def _analyse(
    paths: list[Path], engine: Engine | None, workers: int, quiet: bool, jitters: int = 0, model: Path | None = None
) -> dict[Path, ImageAnalysis]:
    s = settings(engine=engine)
    options = _engine(engine, model).options
    with progress_bar("analysing", quiet=quiet) as progress:
        task = progress.add_task("", total=len(set(paths)))
        return analyse(
            paths, options, cache_dir=s.cache_dir, workers=workers or None, jitters=jitters,
            progress=lambda n: progress.advance(task, n),
        )


def _emit_reports(reports: list[dict[str, Any]]) -> None:
    """Reports for people: each as ``key: value`` lines (as one report is printed), a blank line between them."""
    for i, report in enumerate(reports):
        if i:
            out.print()
        emit_fields(report, False)


@eval_app.command("pairs")
def pairs(
    folder: Annotated[Path, typer.Argument(help="Folder holding images/ and pairs.csv (image_a,image_b,same).")],
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 0,
    engine: Annotated[Optional[Engine], EngineOpt] = None,
    baseline: Annotated[bool, BaselineOpt] = False,
    all_variants: Annotated[bool, AllOpt] = False,
    jitters: Annotated[int, typer.Option(help="Also score dlib's jittering with this many copies (slow).")] = 0,
    model: Annotated[Optional[Path], ModelOpt] = None,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """10-fold verification accuracy, TAR at FAR 1e-2 / 1e-3, the no-face rate, and the calibration's held-out check."""
    _pairs(folder, workers, engine, baseline, all_variants, jitters, model, as_json)


@friendly
def _pairs(
    folder: Path, workers: int, engine: Engine | None, baseline: bool, all_variants: bool, jitters: int,
    model: Path | None, as_json: bool,
) -> None:
    items = read_pairs(folder)
    check_pairs_protocol(items)
    images = folder / "images"
    paths = [images / p.a for p in items] + [images / p.b for p in items]
    analyses = _analyse(paths, engine, workers, as_json, jitters, model)
    if all_variants or jitters:
        variants = VARIANTS + ((replace(JITTER, name=f"dlib jitter ({jitters} copies) + MMOD fallback"),) if jitters else ())
        reports = [pairs_report(items, images, analyses, v) for v in variants]
        if as_json:
            emit_json({"variants": reports})
        else:
            _emit_reports(reports)
        return
    report = pairs_report(items, images, analyses, _variant(baseline, model), None if baseline else _scoring(model))
    emit_fields(report, as_json)


@eval_app.command("ident")
def ident(
    folder: Annotated[Path, typer.Argument(help="A folder per identity (or a folder with images/).")],
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 0,
    engine: Annotated[Optional[Engine], EngineOpt] = None,
    baseline: Annotated[bool, BaselineOpt] = False,
    all_variants: Annotated[bool, AllOpt] = False,
    model: Annotated[Optional[Path], ModelOpt] = None,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Closed-set rank-1 and open-set FNIR at FPIR 0.01 / 0.001 (single-image identities as non-mated probes)."""
    _ident(folder, workers, engine, baseline, all_variants, model, as_json)


@friendly
def _ident(
    folder: Path, workers: int, engine: Engine | None, baseline: bool, all_variants: bool, model: Path | None,
    as_json: bool,
) -> None:
    identities = identity_folders(folder)
    analyses = _analyse([f for files in identities.values() for f in files], engine, workers, as_json, model=model)
    variants = VARIANTS if all_variants else (_variant(baseline, model),)
    reports = [ident_report(identities, analyses, v) for v in variants]
    if as_json:
        emit_json(reports[0] if len(reports) == 1 else {"variants": reports})
    else:
        _emit_reports(reports)
