"""Gallery commands as the tenant's operator (see :mod:`faceward.cli.acting`): search, verify, manage subjects.

Each maps files and flags to the same act as the API's route and prints the
result; the act is authorized, counted and audited in the tenant's chain.
Enrolling a folder and migrating it are :mod:`faceward.cli.enrolling`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from faceward.cli.acting import acting
from faceward.cli.common import JsonOpt, TenantOpt, command_group, emit_fields, emit_json, fail, friendly, out, settings, table
from faceward.cli.enrolling import EngineOpt
from faceward.text import rfc3339
from faceward.errors import InvalidInput
from faceward.settings import Engine, Settings
from faceward.vision.decode import EXTENSIONS, read_image_file


def _read(path: Path, s: Settings) -> bytes:
    _, data = read_image_file(path, max_bytes=s.max_image_bytes, max_pixels=s.max_image_pixels)
    return data


def search(
    image: Annotated[Path, typer.Argument(help="Probe photo (JPEG, PNG or WebP).")],
    purpose: Annotated[Optional[str], typer.Option(help="Why this search is run (required; audited).")] = None,
    case_reference: Annotated[
        Optional[str], typer.Option("--case-reference", help="The case it serves (required; audited).")
    ] = None,
    k: Annotated[int, typer.Option("-k", help="Candidates to return (1-50).")] = 10,
    engine: Annotated[Optional[Engine], EngineOpt] = None,
    tenant: Annotated[Optional[str], TenantOpt] = None,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Search the gallery with the subject of IMAGE (its most prominent face). Candidates are leads for human review.

    Like POST /v1/search, a search states its purpose and case reference; both are audited."""
    run_search(image, purpose, case_reference, k, engine, tenant, as_json)


@friendly
def run_search(
    image: Path, purpose: str | None, case_reference: str | None, k: int, engine: Engine | None, tenant: str | None,
    as_json: bool,
) -> None:
    if image.suffix.lower() not in EXTENSIONS and not image.exists():
        raise InvalidInput(f"{image}: no such file")
    s = settings(engine=engine)
    probe = _read(image, s)
    act = acting(s, "search", tenant)
    result = act.operations.search(
        act.principal, probe, purpose=purpose or "", case_reference=case_reference or "", k=k, source=act.source,
    )
    if as_json:
        emit_json(result.as_dict())
        return
    found = result.result  # the SearchResult the reviewable search holds
    # An uncalibrated model's threshold is the one in its manifest: no FMR was measured for it.
    threshold = (f"threshold {found.threshold:.3f} at FMR {found.target_fmr:g}" if found.calibrated
                 else f"threshold {found.threshold:.3f} from its manifest, uncalibrated model")
    out.print(table(
        ["rank", "subject", "name", "score", "est. FMR", "decision"],
        [[str(c.rank), c.subject_id, c.display_name, f"{c.score:.4f}",
          "-" if c.estimated_fmr is None else f"{c.estimated_fmr:.2e}", c.decision.value] for c in found.candidates],
        whole={"rank", "subject", "score", "est. FMR", "decision"},
        title=f"Candidates (gallery of {found.gallery_size} faces; {threshold})",
    ))
    for warning in found.warnings:
        out.print(f"warning: {warning}", markup=False)
    out.print(result.as_dict()["notice"])


def verify(
    image_a: Annotated[Path, typer.Argument(help="First photo.")],
    image_b: Annotated[Optional[Path], typer.Argument(help="Second photo.")] = None,
    subject: Annotated[Optional[str], typer.Option(help="Compare IMAGE_A with every face of this subject instead.")] = None,
    face: Annotated[Optional[int], typer.Option(min=0, help="Which face of IMAGE_A (0 = largest); default its subject (most prominent).")] = None,
    face_b: Annotated[Optional[int], typer.Option(min=0, help="Which face of IMAGE_B (0 = largest); default its subject (most prominent).")] = None,
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
    s = settings(engine=engine)
    first = _read(a, s)
    second = _read(b, s) if b is not None else None
    act = acting(s, "verify", tenant)
    if second is None:
        assert subject is not None
        result = act.operations.verify_subject(act.principal, first, subject, source=act.source, face=face)
    else:
        result = act.operations.verify_images(
            act.principal, first, second, source=act.source, face_a=face, face_b=face_b,
        )
    if as_json:
        emit_json(result.as_dict())
        return
    fmr = "-" if result.estimated_fmr is None else f"{result.estimated_fmr:.2e}"
    out.print(
        f"score {result.score:.4f}  estimated FMR {fmr}  decision {result.decision.value} "
        f"(threshold {result.threshold:.3f})"
    )
    for warning in result.warnings:
        out.print(f"warning: {warning}", markup=False)


subjects_app = command_group(help="List, show and erase enrolled subjects.")


@subjects_app.command("list")
def subjects_list(
    limit: Annotated[int, typer.Option(help="Page size (1-500).")] = 50,
    offset: Annotated[int, typer.Option(help="Subjects to skip.")] = 0,
    tenant: Annotated[Optional[str], TenantOpt] = None, as_json: Annotated[bool, JsonOpt] = False,
    ids: Annotated[bool, typer.Option("--ids", help="Print only the ids, one a line (for $(...) in a shell).")] = False,
) -> None:
    """List subjects (paged)."""
    _subjects_list(limit, offset, tenant, as_json, ids)


@friendly
def _subjects_list(limit: int, offset: int, tenant: str | None, as_json: bool, ids: bool = False) -> None:
    act = acting(settings(), "subjects list", tenant)
    views = act.operations.list_subjects(act.principal, limit=limit, offset=offset, source=act.source)
    rows = [{"id": v.id, "display_name": v.display_name, "consent_basis": v.consent_basis, "created_at": v.created_at} for v in views]
    if ids and not as_json:
        for row in rows:
            out.print(row["id"], markup=False)
        return
    if as_json:
        emit_json({"subjects": rows, "total": act.operations.count_subjects(act.principal, source=act.source)})
        return
    out.print(table(
        ["id", "name", "consent basis", "created"],
        [[v.id, v.display_name, v.consent_basis, rfc3339(v.created_at.replace(microsecond=0))] for v in views],
        whole={"id", "created"},
    ))


@subjects_app.command("show")
def subjects_show(subject_id: str, tenant: Annotated[Optional[str], TenantOpt] = None, as_json: Annotated[bool, JsonOpt] = False) -> None:
    """Show one subject, its consent record and its faces."""
    _subjects_show(subject_id, tenant, as_json)


@friendly
def _subjects_show(subject_id: str, tenant: str | None, as_json: bool) -> None:
    act = acting(settings(), "subjects show", tenant)
    view = act.operations.get_subject(act.principal, subject_id, source=act.source)
    emit_fields(view.__dict__, as_json)


@subjects_app.command("delete")
def subjects_delete(
    subject_id: str,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: the erasure cannot be undone, not even from backups.")] = False,
    tenant: Annotated[Optional[str], TenantOpt] = None,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Erase a subject: faces, templates, name and key, at once. Asks first unless --yes."""
    if not yes:  # like `tenant delete`: asked at a terminal, refused in a script without --yes
        if not sys.stdin.isatty():
            fail("erasing a subject cannot be undone; pass --yes to confirm")
        if not typer.confirm(f"Erase {subject_id} and every face of it? This cannot be undone"):
            fail("nothing erased")
    _subjects_delete(subject_id, tenant, as_json)


@friendly
def _subjects_delete(subject_id: str, tenant: str | None, as_json: bool) -> None:
    act = acting(settings(), "subjects delete", tenant)
    faces = act.operations.erase_subject(act.principal, subject_id, source=act.source)
    if as_json:
        emit_json({"erased": subject_id, "faces": len(faces)})
    else:
        out.print(f"erased {subject_id} and {len(faces)} face(s)")
