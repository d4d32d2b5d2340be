"""``faceward reenroll`` through the API, for an admin: begin, send each enrolled photo again, finish.

Run it against a server configured with the *new* model (its settings name the manifest): each photo
is analysed there and stored beside the old templates, where nothing searches them, until the finish
switches the gallery in one write. The same use case and audit as the CLI's (``gallery.migrate``,
``face.migrate``, ``gallery.switch``); every step is idempotent, so a migration resumes.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Path, Request, Response, UploadFile

from faceward.api.deps import CallerDep, OperationsDep, get_services
from faceward.api.routes.common import AUTHED, UPLOAD, errors
from faceward.api.schemas import ErrorOut, FaceOut, MigrationFinishIn, MigrationOut, MigrationReportOut
from faceward.api.uploads import one_part_each, read_image

router = APIRouter(prefix="/v1/gallery/migration", tags=["migration"], dependencies=[Depends(one_part_each)])
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "No migration to this server's model is under way: begin it first."},
}


@router.post("", response_model=MigrationOut, responses=errors(*AUTHED),
             summary="Begin (or resume) moving the gallery to this server's model (admin)")
def begin_migration(ops: OperationsDep, caller: CallerDep) -> MigrationOut:
    current = ops.begin_migration(caller.principal, source=caller.source)
    return MigrationOut(from_model_id=current, to_model_id=ops.gallery.model_id)


@router.post(
    "/subjects/{subject_id}/faces", status_code=201, response_model=FaceOut,
    responses={200: {"model": FaceOut, "description": "This photo's new template was already built."},
               **errors(*UPLOAD), **CONFLICT},
    summary="Build the new model's template of a photo already enrolled for the subject (admin)",
)
def migrate_face(
    subject_id: Annotated[str, Path(description="A subject id, `s_` and 28 hex digits.")],
    image: Annotated[UploadFile, File(description="A photo enrolled for this subject (the same file: its SHA-256 must match).")],
    request: Request,
    response: Response,
    ops: OperationsDep,
    caller: CallerDep,
) -> FaceOut:
    data = read_image(image, field="image", max_bytes=get_services(request).settings.max_image_bytes)
    face = ops.enroll(caller.principal, subject_id, data, source=caller.source, migrating=True)
    if face.duplicate:
        response.status_code = 200
    return FaceOut(**asdict(face))


@router.post("/finish", response_model=MigrationReportOut, responses={**errors(*AUTHED), **CONFLICT},
             summary="Switch the gallery to the new model and remove the old templates (admin)")
def finish_migration(body: MigrationFinishIn, ops: OperationsDep, caller: CallerDep) -> MigrationReportOut:
    report = ops.finish_migration(caller.principal, require_all=body.require_all, source=caller.source)
    return MigrationReportOut.model_validate(report.as_dict())
