"""Request and response models of the routes the web console added (#6): detection, reviews, settings, audit check."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from faceward.api.schemas import ProbeFaceOut, Strict, Utc
from faceward.services.reviews import NOTE_MAX, Outcome

ID_PATTERN = r"^[a-z]_[0-9a-f]{28}$"


class DetectedFaceOut(ProbeFaceOut):
    index: int = Field(description="0 for the largest face; pass it as `face` to /v1/search to search with this face.")
    refusals: list[str] = Field(description="Every enrollment quality limit this face fails, in words; empty if none.")


class DetectOut(BaseModel):
    width: int = Field(description="Width of the upright image (EXIF orientation applied), in pixels; boxes use it.")
    height: int
    image_sha256: str
    faces: list[DetectedFaceOut] = Field(description="Largest first.")
    enrollable: bool = Field(
        description="One face, or one clearly larger than and apart from the others, passing every quality limit."
    )
    subject: int | None = Field(
        default=None, description="Index of the face enrollment would take; null when none is clearly the subject."
    )
    searched: int | None = Field(
        default=None, description="Index of the face /v1/search and /v1/verify take when no face is given: the photo's "
        "subject, its most prominent face (size times centrality); null when there is no face."
    )
    verdict: str = Field(description="The enrollment verdict in words.")


class ReviewIn(Strict):
    search_id: str = Field(pattern=r"^q_[0-9a-f]{28}$", description="The search's id, from its result.")
    subject_id: str = Field(pattern=r"^s_[0-9a-f]{28}$")
    face_id: str | None = Field(default=None, pattern=r"^f_[0-9a-f]{28}$", description="The candidate's matching face.")
    review_token: str = Field(pattern=r"^[0-9a-f]{64}$", description="The candidate's token, from the search result.")
    outcome: Outcome = Field(
        description="possible_match, not_a_match, or confirmed (needs another key's standing possible_match)."
    )
    note: str = Field(min_length=1, max_length=NOTE_MAX, description="Why: required for every step.")


class ReviewStepOut(BaseModel):
    id: str
    reviewer_key_id: str
    outcome: Outcome
    note: str
    at: Utc


class CandidateReviewOut(BaseModel):
    search_id: str
    subject_id: str
    face_id: str | None = None
    display_name: str
    review_token: str
    status: Outcome = Field(description="The latest step's outcome.")
    reviewers: list[str] = Field(description="Key ids that recorded a step.")
    steps: list[ReviewStepOut] = Field(description="Oldest first.")
    lead_only: Literal[True] = Field(
        default=True, description="Always true: even a confirmed candidate is a lead, not an identification."
    )


class ReviewListOut(BaseModel):
    reviews: list[CandidateReviewOut]


class TenantSettingsIn(Strict):
    thumbnails: bool = Field(description="Keep and show enrolled faces' thumbnails to reviewers; false deletes them all.")


class ModelCalibrationOut(BaseModel):
    impostor_pairs: int
    genuine_pairs: int
    fmr_resolution: float = Field(description="1 / impostor pairs: no false match rate below it is claimed.")
    source: str | None = None
    measured_at: str | None = None


class ModelOut(BaseModel):
    """The recognizer searches run on, with its provenance as its manifest records it."""

    template_id: str
    model_id: str
    sha256: str
    licence: str
    training_data: str | None
    intended_use: str | None
    manifest: str | None = Field(default=None, description="The manifest file, for a model of your own.")
    fused_with: str | None = Field(
        default=None, description="The bundled model this one's scores are fused with, its weight and licence (decision 032)."
    )
    calibrated: bool
    calibration: ModelCalibrationOut | None
    gallery_model_id: str | None = Field(description="The model this organisation's templates were made with.")
    gallery_model_sha256: str | None = Field(
        default=None, description="The full SHA-256 of that model's weights (null if enrolled before it was recorded); "
        "for a fused model, SHA-256 of '<its SHA-256>+<dlib ResNet's SHA-256>@<weight>' (decision 032)."
    )


class TenantSettingsOut(BaseModel):
    thumbnails: bool
    thumbnails_deleted: int = Field(default=0, description="Thumbnails deleted by this change.")
    model: ModelOut


class AuditVerifyOut(BaseModel):
    ok: bool
    entries: int
    first_bad: int | None = Field(default=None, description="Lowest entry where the chain breaks.")
    reason: str | None = None
    head: int | None = None


__all__ = [
    "AuditVerifyOut", "CandidateReviewOut", "DetectOut", "DetectedFaceOut", "ModelCalibrationOut", "ModelOut",
    "ReviewIn", "ReviewListOut",
    "ReviewStepOut", "TenantSettingsIn", "TenantSettingsOut",
]
