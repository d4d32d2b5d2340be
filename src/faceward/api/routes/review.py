"""Routes the web console needs, usable by any API client (#6): detect faces, review candidates,
see enrolled faces' thumbnails, the tenant's settings, and the audit chain check."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Path, Query, Request, Response, UploadFile

from faceward.api.deps import CallerDep, ServicesDep, get_services
from faceward.api.review_schemas import (
    AuditVerifyOut,
    CandidateReviewOut,
    DetectOut,
    ReviewIn,
    ReviewListOut,
    TenantSettingsIn,
    TenantSettingsOut,
)
from faceward.api.routes.common import AUTHED, UPLOAD, errors
from faceward.api.schemas import ErrorOut
from faceward.api.uploads import one_part_each, read_image
from faceward.services.console import ConsoleActs
from faceward.services.reviews import Outcome

router = APIRouter(prefix="/v1", tags=["review"], dependencies=[Depends(one_part_each)])

FaceId = Annotated[str, Path(description="A face id, `f_` and 28 hex digits.")]
JPEG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/jpeg": {}}, "description": "The face's 150 x 150 aligned crop, JPEG."}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ErrorOut, "description": "The review rule refuses this step (second_reviewer_required)."}}


def review_ops(services: ServicesDep) -> ConsoleActs:
    return services.console


@router.post("/detect", response_model=DetectOut, responses=errors(*UPLOAD),
             summary="The faces in a photo, boxed, with their quality verdict (nothing is stored or matched)")
def detect(
    image: Annotated[UploadFile, File(description="A photo. It is hashed for the audit log and never stored.")],
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
) -> DetectOut:
    data = read_image(image, field="image", max_bytes=get_services(request).settings.max_image_bytes)
    return DetectOut.model_validate(review_ops(services).detect(caller.principal, data, source=caller.source).as_dict())


@router.post("/reviews", status_code=201, response_model=CandidateReviewOut, responses={**errors(*AUTHED), **CONFLICT},
             summary="Record a review step on a search candidate (confirmed needs a second reviewer)")
def record_review(body: ReviewIn, services: ServicesDep, caller: CallerDep) -> CandidateReviewOut:
    review = review_ops(services).record_review(
        caller.principal, search_id=body.search_id, subject_id=body.subject_id, face_id=body.face_id,
        token=body.review_token, outcome=body.outcome.value, note=body.note, source=caller.source,
    )
    return CandidateReviewOut.model_validate(review.as_dict())


@router.get("/reviews", response_model=ReviewListOut, responses=errors(*AUTHED),
            summary="Reviewed candidates, most recently reviewed first")
def list_reviews(
    services: ServicesDep,
    caller: CallerDep,
    search_id: Annotated[str | None, Query(pattern=r"^q_[0-9a-f]{28}$")] = None,
    status: Annotated[Outcome | None, Query(description="Only candidates whose latest step has this outcome.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ReviewListOut:
    found = review_ops(services).list_reviews(
        caller.principal, search_id=search_id, status=status, limit=limit, source=caller.source
    )
    return ReviewListOut(reviews=[CandidateReviewOut.model_validate(c.as_dict()) for c in found])


@router.get("/faces/{face_id}/thumbnail", response_class=Response, responses={**JPEG, **errors(*AUTHED)},
            summary="An enrolled face's thumbnail, for reviewers (404 thumbnails_off when the tenant turned them off)")
def thumbnail(face_id: FaceId, services: ServicesDep, caller: CallerDep) -> Response:
    jpeg = review_ops(services).thumbnail(caller.principal, face_id, source=caller.source)
    return Response(jpeg, media_type="image/jpeg", headers={"cache-control": "private, no-store"})


@router.get("/tenant/settings", response_model=TenantSettingsOut, responses=errors(*AUTHED),
            summary="This organisation's settings (admin)")
def tenant_settings(services: ServicesDep, caller: CallerDep) -> TenantSettingsOut:
    return TenantSettingsOut.model_validate(review_ops(services).tenant_settings(caller.principal, source=caller.source))


@router.patch("/tenant/settings", response_model=TenantSettingsOut, responses=errors(*AUTHED),
              summary="Change this organisation's settings (admin); turning thumbnails off deletes them")
def update_tenant_settings(body: TenantSettingsIn, services: ServicesDep, caller: CallerDep) -> TenantSettingsOut:
    result = review_ops(services).update_tenant_settings(caller.principal, thumbnails=body.thumbnails, source=caller.source)
    return TenantSettingsOut.model_validate(result)


@router.get("/audit/verify", response_model=AuditVerifyOut, responses=errors(*AUTHED),
            summary="Check this tenant's audit hash chain end to end")
def verify_audit(services: ServicesDep, caller: CallerDep) -> AuditVerifyOut:
    return AuditVerifyOut.model_validate(review_ops(services).verify_audit(caller.principal, source=caller.source).as_dict())
