"""Gallery commands: enroll a folder, migrate it to another model, search, verify, manage subjects."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer
from rich.table import Table

from faceward.bootstrap import init_home, open_gallery
from faceward.cli.progress import progress_bar
from faceward.cli.common import JsonOpt, TenantOpt, emit_fields, emit_json, err, friendly, local_tenant_file, out, settings
from faceward.errors import FacewardError, InvalidInput
from faceward.services.consent import Consent
from faceward.services.gallery import GalleryService, utcnow
from faceward.settings import Engine, Settings
from faceward.vision.decode import EXTENSIONS, read_image_file
from faceward.vision.embed import normalise
from faceward.vision.engine import EngineOptions
from faceward.vision.pipeline import FileResult, analyze_files
from faceward.vision.quality import dominant_face
from faceward.vision.types import Box, Quality

EngineOpt = typer.Option("--engine", help="Descriptor runtime (default from FACEWARD_ENGINE).")


def gallery(engine: Engine | None = None, *, configured: Settings | None = None) -> tuple[GalleryService, str]:
    """Open the home's gallery and its local tenant (created on first use)."""
    s = configured or settings(engine=engine)
    init_home(s)
    service = open_gallery(s)
    marker = local_tenant_file(s)
    if marker.exists():
        return service, marker.read_text().strip()
    tenant_id = service.create_tenant("local")
    marker.write_text(tenant_id + "\n")
    return service, tenant_id


def _tenant(service_tenant: tuple[GalleryService, str], tenant: str | None) -> tuple[GalleryService, str]:
    service, local = service_tenant
    return service, tenant or local


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
        "--ray", help="Analyse on the Ray cluster at this address (host:port); keys and writes stay here.")] = None,
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
    service, tenant_id = _tenant(gallery(engine), tenant)
    now = utcnow()
    # Validate every consent before touching the gallery.
    consents = {}
    for name in subjects:
        row = per_subject.get(name) or default
        assert row is not None
        consents[name] = Consent.build(row.basis, row.reference, row.given_at, row.expires_at, now=now)
    files = _image_files(subjects)
    summary: dict[str, Any] = {"subjects": 0, "enrolled": 0, "already_enrolled": 0, "refused": [], "invalid": []}
    subject_ids: dict[str, str] = {}
    options = EngineOptions.from_settings(service.settings)
    flip = service.engine.flip_average  # the manifest may override the settings
    with progress_bar("enrolling", quiet=as_json) as progress:
        task = progress.add_task("", total=len(files))
        paths = [f for _, f in files]
        owner = {f: name for name, f in files}
        for result in _analysed(paths, options, workers, ray_address, service.settings):
            name = owner[result.path]
            progress.advance(task)
            if result.error:
                summary["invalid"].append({"image": str(result.path), "reason": result.error})
                continue
            if not result.faces:
                summary["refused"].append({"image": str(result.path), "reason": "no face found"})
                continue
            if name not in subject_ids:
                existing = service.subject_for_ref(tenant_id, name)
                if existing is None:
                    existing = service.create_subject(tenant_id, name, consents[name], reference=name)
                    summary["subjects"] += 1
                subject_ids[name] = existing.id
            try:
                face = result.faces[dominant_face([Box(**f.box) for f in result.faces])]
                raw = face.raw + face.raw_flipped if flip else face.raw
                descriptor = normalise(raw[None, :].astype(np.float32))[0]
                view = service.admit(
                    tenant_id, subject_ids[name], descriptor, Quality(**face.quality),  # type: ignore[arg-type]
                    face.box, result.sha256, 1,
                )
            except FacewardError as exc:
                summary["refused"].append({"image": str(result.path), "reason": exc.message})
                continue
            summary["already_enrolled" if view.duplicate else "enrolled"] += 1
    if as_json:
        emit_json(summary)
    else:
        out.print(
            f"subjects created: {summary['subjects']}  faces enrolled: {summary['enrolled']}  "
            f"already enrolled: {summary['already_enrolled']}  refused: {len(summary['refused'])}  "
            f"invalid files: {len(summary['invalid'])}"
        )
        for item in summary["refused"][:50]:
            out.print(f"  refused {item['image']}: {item['reason']}", markup=False)
        for item in summary["invalid"]:
            err.print(f"error: {item['reason']}", markup=False)
    if summary["invalid"]:
        raise typer.Exit(1)  # a file that is not an acceptable image is an input error


def _analysed(
    paths: list[Path], options: EngineOptions, workers: int, ray_address: str | None, configured: Settings
) -> Iterator[FileResult]:
    """The files analysed in order: by local worker processes, or by Ray actors (only descriptors come back)."""
    limits = {"max_bytes": configured.max_image_bytes, "max_pixels": configured.max_image_pixels}
    if ray_address is None:
        yield from analyze_files(paths, options, workers=workers or None, **limits)
        return
    from faceward.vision.cluster import RayAnalyzer

    with RayAnalyzer(ray_address, options, actors=workers or None, **limits) as analyzer:
        yield from analyzer.analyze(paths)


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
    service, tenant_id = _tenant(gallery(configured=configured), tenant)
    old_model = service.begin_migration(tenant_id)
    summary: dict[str, Any] = {
        "old_model_id": old_model, "new_model_id": service.model_id, "migrated": 0, "already_migrated": 0,
        "unknown_folders": [], "not_in_gallery": 0, "refused": [], "invalid": [],
    }
    subject_ids: dict[str, str] = {}
    for name in subjects:
        found = service.subject_for_ref(tenant_id, name)
        if found is None:
            summary["unknown_folders"].append(name)
        else:
            subject_ids[name] = found.id
    files = [(name, f) for name, f in _image_files(subjects) if name in subject_ids]
    options = EngineOptions.from_settings(service.settings)
    with progress_bar("re-enrolling", quiet=as_json) as progress:
        task = progress.add_task("", total=len(files))
        owner = {f: name for name, f in files}
        for result in analyze_files(
            [f for _, f in files], options, workers=workers or None,
            max_bytes=service.settings.max_image_bytes, max_pixels=service.settings.max_image_pixels,
        ):
            progress.advance(task)
            if result.error:
                summary["invalid"].append({"image": str(result.path), "reason": result.error})
                continue
            if not result.faces:
                summary["refused"].append({"image": str(result.path), "reason": "no face found"})
                continue
            try:
                face = result.faces[dominant_face([Box(**f.box) for f in result.faces])]
                raw = face.raw + face.raw_flipped if service.engine.flip_average else face.raw
                descriptor = normalise(raw[None, :].astype(np.float32))[0]
                view = service.admit_migrated(
                    tenant_id, subject_ids[owner[result.path]], descriptor, Quality(**face.quality),  # type: ignore[arg-type]
                    face.box, result.sha256, 1,
                )
            except FacewardError as exc:
                if exc.code == "not_in_gallery":
                    summary["not_in_gallery"] += 1
                else:
                    summary["refused"].append({"image": str(result.path), "reason": exc.message})
                continue
            summary["already_migrated" if view.duplicate else "migrated"] += 1
    report = service.finish_migration(tenant_id, require_all=strict)
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


def _read(path: Path, service: GalleryService) -> bytes:
    _, data = read_image_file(path, max_bytes=service.settings.max_image_bytes, max_pixels=service.settings.max_image_pixels)
    return data


def search(
    image: Annotated[Path, typer.Argument(help="Probe photo (JPEG, PNG or WebP).")],
    k: Annotated[int, typer.Option("-k", help="Candidates to return (1-50).")] = 10,
    engine: Annotated[Optional[Engine], EngineOpt] = None,
    tenant: Annotated[Optional[str], TenantOpt] = None,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Search the gallery with the largest face in IMAGE. Candidates are leads for human review."""
    run_search(image, k, engine, tenant, as_json)


@friendly
def run_search(image: Path, k: int, engine: Engine | None, tenant: str | None, as_json: bool) -> None:
    if image.suffix.lower() not in EXTENSIONS and not image.exists():
        raise InvalidInput(f"{image}: no such file")
    service, tenant_id = _tenant(gallery(engine), tenant)
    result = service.search(tenant_id, _read(image, service), k=k)
    if as_json:
        emit_json(result.as_dict())
        return
    table = Table(title=f"Candidates (gallery of {result.gallery_size} faces; threshold {result.threshold:.3f} at FMR {result.target_fmr:g})")
    for col in ("rank", "subject", "name", "score", "est. FMR", "decision"):
        table.add_column(col)
    for c in result.candidates:
        table.add_row(str(c.rank), c.subject_id, c.display_name, f"{c.score:.4f}", f"{c.estimated_fmr:.2e}", c.decision.value)
    out.print(table)
    for warning in result.warnings:
        out.print(f"warning: {warning}", markup=False)
    out.print(result.as_dict()["notice"])


def verify(
    image_a: Annotated[Path, typer.Argument(help="First photo.")],
    image_b: Annotated[Optional[Path], typer.Argument(help="Second photo.")] = None,
    subject: Annotated[Optional[str], typer.Option(help="Compare IMAGE_A with every face of this subject instead.")] = None,
    face: Annotated[Optional[int], typer.Option(min=0, help="Which face of IMAGE_A (0 = largest); default the largest.")] = None,
    face_b: Annotated[Optional[int], typer.Option(min=0, help="Which face of IMAGE_B (0 = largest); default the largest.")] = None,
    engine: Annotated[Optional[Engine], EngineOpt] = None,
    tenant: Annotated[Optional[str], TenantOpt] = None,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """1:1 verification of two photos, or of a photo against an enrolled subject; warns when a photo shows several faces."""
    run_verify(image_a, image_b, subject, engine, tenant, as_json, face, face_b)


@friendly
def run_verify(
    a: Path, b: Path | None, subject: str | None, engine: Engine | None, tenant: str | None, as_json: bool,
    face: int | None = None, face_b: int | None = None,
) -> None:
    if (b is None) == (subject is None):
        raise InvalidInput("give two images, or one image and --subject")
    if subject and face_b is not None:
        raise InvalidInput("--face-b needs a second image")
    service, tenant_id = _tenant(gallery(engine), tenant)
    if subject:
        result = service.verify_subject(tenant_id, _read(a, service), subject, face=face)
    else:
        assert b is not None
        result = service.verify_images(tenant_id, _read(a, service), _read(b, service), face_a=face, face_b=face_b)
    if as_json:
        emit_json(result.as_dict())
        return
    out.print(
        f"score {result.score:.4f}  estimated FMR {result.estimated_fmr:.2e}  decision {result.decision.value} "
        f"(threshold {result.threshold:.3f})"
    )
    for warning in result.warnings:
        out.print(f"warning: {warning}", markup=False)


subjects_app = typer.Typer(help="List, show and erase enrolled subjects.", no_args_is_help=True)


@subjects_app.command("list")
def subjects_list(
    limit: Annotated[int, typer.Option(help="Page size (1-500).")] = 50,
    offset: Annotated[int, typer.Option(help="Subjects to skip.")] = 0,
    tenant: Annotated[Optional[str], TenantOpt] = None, as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """List subjects (paged)."""
    _subjects_list(limit, offset, tenant, as_json)


@friendly
def _subjects_list(limit: int, offset: int, tenant: str | None, as_json: bool) -> None:
    service, tenant_id = _tenant(gallery(), tenant)
    views = service.list_subjects(tenant_id, limit=limit, offset=offset)
    rows = [{"id": v.id, "display_name": v.display_name, "consent_basis": v.consent_basis, "created_at": v.created_at} for v in views]
    if as_json:
        emit_json({"subjects": rows, "total": service.store.count_subjects(tenant_id)})
        return
    for row in rows:
        out.print(f"{row['id']}  {row['display_name']}  ({row['consent_basis']})", markup=False)


@subjects_app.command("show")
def subjects_show(subject_id: str, tenant: Annotated[Optional[str], TenantOpt] = None, as_json: Annotated[bool, JsonOpt] = False) -> None:
    """Show one subject, its consent record and its faces."""
    _subjects_show(subject_id, tenant, as_json)


@friendly
def _subjects_show(subject_id: str, tenant: str | None, as_json: bool) -> None:
    service, tenant_id = _tenant(gallery(), tenant)
    view = service.get_subject(tenant_id, subject_id)
    emit_fields(view.__dict__, as_json)


@subjects_app.command("delete")
def subjects_delete(subject_id: str, tenant: Annotated[Optional[str], TenantOpt] = None, as_json: Annotated[bool, JsonOpt] = False) -> None:
    """Erase a subject: faces, templates, name and key, at once."""
    _subjects_delete(subject_id, tenant, as_json)


@friendly
def _subjects_delete(subject_id: str, tenant: str | None, as_json: bool) -> None:
    service, tenant_id = _tenant(gallery(), tenant)
    faces = service.delete_subject(tenant_id, subject_id)
    if as_json:
        emit_json({"erased": subject_id, "faces": len(faces)})
    else:
        out.print(f"erased {subject_id} and {len(faces)} face(s)")


