"""1:N search and 1:1 verification (searcher). Results are leads for human review."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from faceward.api.deps import CallerDep, OperationsDep, get_services
from faceward.api.routes.common import UPLOAD, errors
from faceward.api.schemas import TEXT_PATTERN, SearchOut, VerifyOut
from faceward.api.uploads import one_part_each, read_image
from faceward.errors import InvalidInput
from faceward.services.gallery import MAX_K

router = APIRouter(prefix="/v1", tags=["matching"], responses=errors(*UPLOAD), dependencies=[Depends(one_part_each)])

MAX_FACES = 999


@router.post("/search", response_model=SearchOut, summary="Search the gallery with the subject of a photo (its most prominent face)")
def search(
    image: Annotated[UploadFile, File(description="The probe photo. It is hashed for the audit log and never stored.")],
    purpose: Annotated[str, Form(min_length=1, max_length=500, pattern=TEXT_PATTERN, description="Why this search is made (audited).")],
    case_reference: Annotated[str, Form(min_length=1, max_length=500, pattern=TEXT_PATTERN, description="The case it belongs to (audited).")],
    request: Request,
    ops: OperationsDep,
    caller: CallerDep,
    k: Annotated[int, Form(ge=1, le=MAX_K, description="How many candidates to return.")] = 10,
    face: Annotated[int | None, Form(ge=0, le=MAX_FACES, description="Search with this face of the probe "
                                     "(0 = largest, as /v1/detect numbers them); default the photo's subject, its most prominent face "
                                     "(size times centrality).")] = None,
) -> SearchOut:
    data = read_image(image, field="image", max_bytes=get_services(request).settings.max_image_bytes)
    result = ops.search(
        caller.principal, data, purpose=purpose, case_reference=case_reference, k=k, source=caller.source, face=face
    )
    return SearchOut.model_validate(result.as_dict())


@router.post(
    "/verify",
    response_model=VerifyOut,
    summary="Compare two photos (image_a, image_b), or a photo with an enrolled subject (image, subject_id)",
)
def verify(
    request: Request,
    ops: OperationsDep,
    caller: CallerDep,
    image_a: Annotated[UploadFile | None, File()] = None,
    image_b: Annotated[UploadFile | None, File()] = None,
    image: Annotated[UploadFile | None, File()] = None,
    subject_id: Annotated[str | None, Form(max_length=64)] = None,
    face: Annotated[int | None, Form(ge=0, le=MAX_FACES, description="With image and subject_id: compare this face "
                                     "of the image (0 = largest, as /v1/detect numbers them); default the photo's subject (most prominent).")] = None,
    face_a: Annotated[int | None, Form(ge=0, le=MAX_FACES, description="Which face of image_a (default its subject, the most prominent).")] = None,
    face_b: Annotated[int | None, Form(ge=0, le=MAX_FACES, description="Which face of image_b (default its subject, the most prominent).")] = None,
) -> VerifyOut:
    cap = get_services(request).settings.max_image_bytes
    if image_a is not None and image_b is not None and image is None and subject_id is None:
        a = read_image(image_a, field="image_a", max_bytes=cap)
        b = read_image(image_b, field="image_b", max_bytes=cap)
        if face is not None:
            raise InvalidInput("with image_a and image_b, choose faces with face_a and face_b", code="invalid_request")
        result = ops.verify_images(caller.principal, a, b, source=caller.source, face_a=face_a, face_b=face_b)
    elif image is not None and subject_id is not None and image_a is None and image_b is None:
        if face_a is not None or face_b is not None:
            raise InvalidInput("with image and subject_id, choose the face with face", code="invalid_request")
        result = ops.verify_subject(caller.principal, read_image(image, field="image", max_bytes=cap), subject_id,
                                    source=caller.source, face=face)
    else:
        raise InvalidInput("send image_a and image_b, or image and subject_id", code="invalid_request")
    return VerifyOut.model_validate(result.as_dict())
