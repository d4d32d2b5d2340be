"""Subjects, their consent records and their faces (enroller)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, File, Path, Query, Request, Response, UploadFile

from faceward.api.deps import CallerDep, OperationsDep, get_services
from faceward.api.routes.common import AUTHED, UPLOAD, errors, subject_out
from faceward.api.schemas import ErasureOut, FaceOut, SubjectIn, SubjectListOut, SubjectOut
from faceward.api.uploads import one_part_each, read_image

router = APIRouter(prefix="/v1/subjects", tags=["subjects"], dependencies=[Depends(one_part_each)])

SubjectId = Annotated[str, Path(description="A subject id, `s_` and 28 hex digits.")]


@router.post("", status_code=201, response_model=SubjectOut, responses=errors(*AUTHED),
             summary="Create a subject with its consent record (422 without a valid one)")
def create_subject(body: SubjectIn, ops: OperationsDep, caller: CallerDep) -> SubjectOut:
    consent = body.consent
    view = ops.create_subject(
        caller.principal, body.display_name, basis=consent.basis.value, reference=consent.reference,
        given_at=consent.given_at, expires_at=consent.expires_at, source=caller.source,
    )
    return subject_out(view)


@router.get("", response_model=SubjectListOut, responses=errors(*AUTHED), summary="List subjects, oldest first")
def list_subjects(
    ops: OperationsDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> SubjectListOut:
    views = ops.list_subjects(caller.principal, limit=limit, offset=offset, source=caller.source)
    return SubjectListOut(subjects=[subject_out(v) for v in views], limit=limit, offset=offset)


@router.get("/{subject_id}", response_model=SubjectOut, responses=errors(*AUTHED), summary="One subject and its faces")
def get_subject(subject_id: SubjectId, ops: OperationsDep, caller: CallerDep) -> SubjectOut:
    return subject_out(ops.get_subject(caller.principal, subject_id, source=caller.source))


@router.delete("/{subject_id}", response_model=ErasureOut, responses=errors(*AUTHED),
               summary="Erase a subject: faces, templates, name and key, at once")
def erase_subject(subject_id: SubjectId, ops: OperationsDep, caller: CallerDep) -> ErasureOut:
    face_ids = ops.erase_subject(caller.principal, subject_id, source=caller.source)
    return ErasureOut(subject_id=subject_id, faces_erased=len(face_ids))


@router.post(
    "/{subject_id}/faces",
    status_code=201,
    response_model=FaceOut,
    responses={200: {"model": FaceOut, "description": "This image was already enrolled for the subject."}, **errors(*UPLOAD)},
    summary="Enroll the subject's face in an uploaded photo (JPEG, PNG or WebP): its one face, or its clear subject",
)
def enroll_face(
    subject_id: SubjectId,
    image: Annotated[UploadFile, File(description="The photo: one face, or one clearly larger than and apart from the others (bystanders), passing the quality limits.")],
    request: Request,
    response: Response,
    ops: OperationsDep,
    caller: CallerDep,
) -> FaceOut:
    data = read_image(image, field="image", max_bytes=get_services(request).settings.max_image_bytes)
    face = ops.enroll(caller.principal, subject_id, data, source=caller.source)
    if face.duplicate:
        response.status_code = 200
    return FaceOut(**asdict(face))
