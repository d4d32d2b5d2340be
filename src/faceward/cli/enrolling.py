"""Enrolling a folder and migrating it to another model, as the tenant's operator (see :mod:`faceward.cli.acting`).

Bulk analysis runs in worker processes (:mod:`faceward.vision.pipeline`); each face
is then admitted through the same act as ``POST /v1/subjects/{id}/faces``
(quality gate, audit entry, usage count), with its template made by the same
function and its quality figures unrounded, so a photo enrolled here and through
the API stores the same template.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer

from faceward.cli.acting import Acting, acting
from faceward.cli.common import JsonOpt, TenantOpt, emit_json, err, friendly, out, settings
from faceward.cli.progress import progress_bar
from faceward.errors import FacewardError, InvalidInput
from faceward.security.errors import RateLimited
from faceward.services.consent import Consent
from faceward.services.ids import utcnow
from faceward.services.operations import AnalysedFace
from faceward.services.views import MigrationReport
from faceward.settings import Engine, Settings
from faceward.vision.engine import EngineOptions
from faceward.vision.pipeline import FileResult, analyze_files
from faceward.vision.subject import Embed, dominant_face
from faceward.vision.types import Box, Quality

EngineOpt = typer.Option("--engine", help="Descriptor runtime (default from FACEWARD_ENGINE).")
PATIENCE_S = 60  # a per-minute rate limit is waited out; a daily quota is not
T = TypeVar("T")


def patiently(act: Callable[[], T]) -> T:
    """Run ``act``, waiting out the operator's per-minute rate limit (the same limit an API key has)."""
    while True:
        try:
            return act()
        except RateLimited as exc:
            if exc.retry_after > PATIENCE_S:
                raise
            time.sleep(exc.retry_after)


def analysed(result: FileResult, flip_average: bool) -> AnalysedFace:
    """A bulk worker's dominant face as the enrollment act takes it: the engine's template, the unrounded
    quality (bystanders are reported by :func:`~faceward.vision.subject.dominant_face`, which refuses
    only an ambiguous photo)."""
    face = result.faces[dominant_face([Box(**f.box) for f in result.faces], result.size)]
    quality = face.measured or Quality(**face.quality)  # type: ignore[arg-type]
    return AnalysedFace(face.template(flip_average), quality, face.box, result.sha256, 1)


@dataclass
class ConsentRow:
    basis: str
    reference: str
    given_at: datetime | None
    expires_at: datetime | None


def _consents(folder: Path, basis: str | None, reference: str | None) -> tuple[dict[str, ConsentRow], ConsentRow | None]:
    per_subject: dict[str, ConsentRow] = {}
    path = folder / "consent.csv"
    if path.is_file():
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"subject", "basis", "reference"} <= set(reader.fieldnames):
                raise InvalidInput(f"{path}: header must include subject,basis,reference[,given_at,expires_at]")
            for line, row in enumerate(reader, start=2):
                try:
                    given = datetime.fromisoformat(row["given_at"]) if row.get("given_at") else None
                    expires = datetime.fromisoformat(row["expires_at"]) if row.get("expires_at") else None
                except ValueError:
                    raise InvalidInput(f"{path}:{line}: dates must be ISO 8601") from None
                per_subject[row["subject"]] = ConsentRow(row["basis"], row["reference"], given, expires)
    default = ConsentRow(basis, reference, None, None) if basis and reference else None
    if basis and not reference or reference and not basis:
        raise InvalidInput("--basis and --reference go together")
    return per_subject, default


def enroll(
    folder: Annotated[Path, typer.Argument(help="One sub-folder per subject, named after the subject.")],
    basis: Annotated[Optional[str], typer.Option(help="Lawful basis for the whole batch, e.g. explicit_consent.")] = None,
    reference: Annotated[Optional[str], typer.Option(help="Consent reference for the whole batch.")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes for face analysis (with --ray: Ray actors).")] = 0,
    engine: Annotated[Optional[Engine], EngineOpt] = None,
    tenant: Annotated[Optional[str], TenantOpt] = None,
    as_json: Annotated[bool, JsonOpt] = False,
    ray: Annotated[Optional[str], typer.Option(
        "--ray", help="Analyse on the Ray cluster at this address (host:port; refused if not reachable within 10 s); keys and writes stay here.")] = None,
) -> None:
    """Enroll every image of every sub-folder. Resumable: re-running enrolls only what is missing."""
    run_enroll(folder, basis, reference, workers, engine, tenant, as_json, ray)


@friendly
def run_enroll(
    folder: Path, basis: str | None, reference: str | None, workers: int, engine: Engine | None,
    tenant: str | None, as_json: bool, ray_address: str | None = None,
) -> None:
    if not folder.is_dir():
        raise InvalidInput(f"{folder} is not a folder")
    per_subject, default = _consents(folder, basis, reference)
    subjects = _subject_folders(folder)
    lacking = [name for name in subjects if name not in per_subject and default is None]
    if lacking:
        raise InvalidInput(
            f"no consent record for {len(lacking)} subject(s) (e.g. {lacking[0]}); pass --basis and --reference or add consent.csv"
        )
    rows = {name: per_subject.get(name) or default for name in subjects}
    now = utcnow()
    for row in rows.values():  # every consent valid before anything is stored
        assert row is not None
        Consent.build(row.basis, row.reference, row.given_at, row.expires_at, now=now)
    act = acting(settings(engine=engine), "enroll", tenant)
    ops, principal, source = act.operations, act.principal, act.source
    gallery = act.services.gallery
    files = _image_files(subjects)
    summary: dict[str, Any] = {"subjects": 0, "enrolled": 0, "already_enrolled": 0, "refused": [], "invalid": [],
                               "warned": [], "bystanders": []}
    subject_ids: dict[str, str] = {}
    flip = gallery.engine.flip_average  # the manifest may override the settings
    with progress_bar("enrolling", quiet=as_json) as progress:
        task = progress.add_task("", total=len(files))
        owner = {f: name for name, f in files}
        paths = [f for _, f in files]
        analysed_files = _analysed(paths, EngineOptions.from_settings(gallery.settings), workers, ray_address, gallery.settings)
        for result in _with_faces(analysed_files, summary, lambda: progress.advance(task)):
            name = owner[result.path]
            if name not in subject_ids:
                subject_ids[name], created = _subject(act, name, rows[name])
                summary["subjects"] += created
            try:
                face = analysed(result, flip)
                view = patiently(lambda: ops.admit_face(principal, subject_ids[name], face, source=source))
            except FacewardError as exc:
                summary["refused"].append({"image": str(result.path), "reason": exc.message})
                continue
            summary["already_enrolled" if view.duplicate else "enrolled"] += 1
            summary["warned"] += [{"image": str(result.path), "warning": w} for w in view.warnings]
            if len(result.faces) > 1 and not view.duplicate:  # as the API's ``bystanders``: who else was there
                others = [f.box for f in result.faces if f.box != face.box]
                summary["bystanders"].append({"image": str(result.path), "box": face.box, "bystanders": others})
    if as_json:
        emit_json(summary)
    else:
        out.print(
            f"subjects created: {summary['subjects']}  faces enrolled: {summary['enrolled']}  "
            f"already enrolled: {summary['already_enrolled']}  refused: {len(summary['refused'])}  "
            f"invalid files: {len(summary['invalid'])}  enrolled with a warning: {len(summary['warned'])}  "
            f"enrolled beside bystanders: {len(summary['bystanders'])}"
        )
        for item in summary["refused"][:50]:
            out.print(f"  refused {item['image']}: {item['reason']}", markup=False)
        for item in summary["warned"][:50]:
            out.print(f"  {item['image']}: {item['warning']}", markup=False)
        for item in summary["bystanders"][:50]:
            box, count = item["box"], len(item["bystanders"])
            out.print(f"  {item['image']}: enrolled the face at x={box['left']} y={box['top']} ({box['right'] - box['left']} px "
                      f"wide); {count} bystander{'s' if count > 1 else ''} not enrolled", markup=False)
        for item in summary["invalid"]:
            err.print(f"error: {item['reason']}", markup=False)
    if summary["invalid"]:
        raise typer.Exit(1)  # a file that is not an acceptable image is an input error


def _analysed(
    paths: list[Path], options: EngineOptions, workers: int, ray_address: str | None, configured: Settings
) -> Iterator[FileResult]:
    """The files analysed in order, by local worker processes or by Ray actors (only descriptors come back):
    each photo's enrollment subject alone is embedded, so no bystander's template is made (decision 038)."""
    max_bytes, max_pixels = configured.max_image_bytes, configured.max_image_pixels
    if ray_address is None:
        yield from analyze_files(
            paths, options, workers=workers or None, max_bytes=max_bytes, max_pixels=max_pixels, embed=Embed.DOMINANT,
        )
        return
    from faceward.vision.cluster import RayAnalyzer

    with RayAnalyzer(
        ray_address, options, actors=workers or None, max_bytes=max_bytes, max_pixels=max_pixels,
    ) as analyzer:
        yield from analyzer.analyze(paths, embed=Embed.DOMINANT)


def _with_faces(results: Iterable[FileResult], summary: dict[str, Any], advance: Callable[[], None]) -> Iterator[FileResult]:
    """The results that found a face; unreadable files and faceless images go into the summary."""
    for result in results:
        advance()
        if result.error:
            summary["invalid"].append({"image": str(result.path), "reason": result.error})
        elif not result.faces:
            summary["refused"].append({"image": str(result.path), "reason": "no face found"})
        else:
            yield result


def _subject(act: Acting, name: str, row: ConsentRow | None) -> tuple[str, int]:
    """The subject enrolled from folder ``name`` (found again by it); created with its consent on first use."""
    ops, principal, source = act.operations, act.principal, act.source
    found = patiently(lambda: ops.find_subject(principal, name, source=source))
    if found is not None:
        return found.id, 0
    assert row is not None
    created = patiently(lambda: ops.create_subject(
        principal, name, basis=row.basis, reference=row.reference, given_at=row.given_at, expires_at=row.expires_at,
        source=source, external_reference=name,
    ))
    return created.id, 1


def _subject_folders(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise InvalidInput(f"{folder} is not a folder")
    subjects = {p.name: p for p in sorted(folder.iterdir()) if p.is_dir()}
    if not subjects:
        raise InvalidInput(f"{folder} has no sub-folders (one per subject)")
    return subjects


def _image_files(subjects: dict[str, Path]) -> list[tuple[str, Path]]:
    return [(name, f) for name, d in subjects.items() for f in sorted(d.iterdir()) if f.is_file() and f.name != "consent.csv"]


def reenroll(
    folder: Annotated[Path, typer.Argument(help="The folder the gallery was enrolled from: one sub-folder per subject.")],
    model: Annotated[Optional[Path], typer.Option("--model", help="Recognizer manifest (JSON) of the new model.")] = None,
    engine: Annotated[
        Optional[Engine], typer.Option("--engine", help="Move back to dlib's ResNet, run by this runtime (instead of --model).")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Switch only if every subject gets a template of the new model.")] = False,
    workers: Annotated[int, typer.Option(help="Worker processes for face analysis.")] = 0,
    tenant: Annotated[Optional[str], TenantOpt] = None,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Migrate the gallery to another model: re-read its folder, build the new templates, then switch.

    Source photos are never kept, so the new templates come from the same folder
    layout as `faceward enroll` (subjects are found again by folder name). Only
    images already enrolled for that subject migrate. Searches keep using the old
    model until every image is done; then the gallery's model switches in one
    step and the old templates are removed. Resumable. Pause enrollment meanwhile,
    and restart servers with the new model's settings afterwards.
    """
    run_reenroll(folder, model, engine, strict, workers, tenant, as_json)


@friendly
def run_reenroll(
    folder: Path, model: Path | None, engine: Engine | None, strict: bool, workers: int, tenant: str | None, as_json: bool,
) -> None:
    if (model is None) == (engine is None):
        raise InvalidInput("give the new model: --model MANIFEST, or --engine dlib|onnx for dlib's ResNet")
    subjects = _subject_folders(folder)
    configured = settings(engine=engine).model_copy(update={"recognizer_manifest": model.resolve() if model else None})
    act = acting(configured, "reenroll", tenant)
    ops, principal, source = act.operations, act.principal, act.source
    gallery = act.services.gallery
    old_model = ops.begin_migration(principal, source=source)
    summary: dict[str, Any] = {
        "old_model_id": old_model, "new_model_id": gallery.model_id, "migrated": 0, "already_migrated": 0,
        "unknown_folders": [], "not_in_gallery": 0, "refused": [], "invalid": [],
    }
    subject_ids: dict[str, str] = {}
    for name in subjects:
        found = patiently(lambda: ops.find_subject(principal, name, source=source))
        if found is None:
            summary["unknown_folders"].append(name)
        else:
            subject_ids[name] = found.id
    files = [(name, f) for name, f in _image_files(subjects) if name in subject_ids]
    flip = gallery.engine.flip_average
    with progress_bar("re-enrolling", quiet=as_json) as progress:
        task = progress.add_task("", total=len(files))
        owner = {f: name for name, f in files}
        analysed_files = _analysed([f for _, f in files], EngineOptions.from_settings(gallery.settings), workers, None, gallery.settings)
        for result in _with_faces(analysed_files, summary, lambda: progress.advance(task)):
            subject_id = subject_ids[owner[result.path]]
            try:
                face = analysed(result, flip)
                view = patiently(lambda: ops.admit_face(principal, subject_id, face, source=source, migrating=True))
            except FacewardError as exc:
                if exc.code == "not_in_gallery":
                    summary["not_in_gallery"] += 1
                else:
                    summary["refused"].append({"image": str(result.path), "reason": exc.message})
                continue
            summary["already_migrated" if view.duplicate else "migrated"] += 1
    report = ops.finish_migration(principal, require_all=strict, source=source)
    _report_migration(summary, report, subject_ids, as_json)


def _report_migration(summary: dict[str, Any], report: MigrationReport, subject_ids: dict[str, str], as_json: bool) -> None:
    folder_of = {sid: name for name, sid in subject_ids.items()}
    missing = [{**item, "folder": folder_of.get(item["subject_id"])} for item in report.without_new_faces]
    summary.update(report.as_dict(), without_new_faces=missing)
    if as_json:
        emit_json(summary)
    else:
        verdict = (f"switched the gallery to {report.new_model_id}" if report.switched
                   else f"did NOT switch: the gallery still holds {report.old_model_id}")
        out.print(
            f"{verdict}\nsubjects: {report.subjects}  with new templates: {report.subjects_migrated}  "
            f"templates built: {summary['migrated']} (+{summary['already_migrated']} from an earlier run)  "
            f"old templates removed: {report.old_faces_removed}", markup=False,
        )
        out.print(
            f"refused: {len(summary['refused'])}  invalid files: {len(summary['invalid'])}  "
            f"images not in the gallery (skipped): {summary['not_in_gallery']}  "
            f"folders with no subject: {len(summary['unknown_folders'])}", markup=False,
        )
        for item in summary["refused"][:50]:
            out.print(f"  refused {item['image']}: {item['reason']}", markup=False)
        for item in missing:
            where = f" (folder {item['folder']})" if item["folder"] else " (no folder)"
            out.print(f"  no template of the new model: {item['subject_id']} {item['display_name']}{where}", markup=False)
    if not report.switched:
        raise typer.Exit(1)


__all__ = ["enroll", "reenroll"]
