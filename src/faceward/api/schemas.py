"""What goes over the wire: request and response models, kept apart from storage records and service views.

Text fields refuse blank values, control characters and invisible formatting or
text-direction characters in the schema itself (:mod:`faceward.text`), so what the
OpenAPI document promises is what the service accepts; they arrive in Unicode NFC. Moments must
fall in years 1900-9999 (a database stores them without surprises).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from faceward.scoring import Decision
from faceward.security.permissions import Role
from faceward.services.consent import LawfulBasis
from faceward.text import TEXT_PATTERN, normal, text_problem

def _text_ok(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return normal(value)


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _moment_text(value: Any) -> Any:
    # The schema promises an ISO 8601 string; pydantic alone would also read a number as Unix time.
    if isinstance(value, (int, float)) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("must be an ISO 8601 date and time, such as 2026-12-01T09:30:00Z")
    return value


def _moment_ok(value: datetime) -> datetime:
    if not 1900 <= value.year <= 9998:
        raise ValueError("dates must fall in the years 1900 to 9998")
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


Label = Annotated[str, Field(min_length=1, max_length=100, pattern=TEXT_PATTERN), AfterValidator(_text_ok)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=TEXT_PATTERN), AfterValidator(_text_ok)]
Reference = Annotated[str, Field(min_length=1, max_length=200, pattern=TEXT_PATTERN), AfterValidator(_text_ok)]


Moment = Annotated[
    datetime, BeforeValidator(_moment_text), AfterValidator(_moment_ok), Field(description="ISO 8601; without an offset it is taken as UTC.")
]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# Output moments: always UTC with an offset (SQLite hands back naive values).
Utc = Annotated[datetime, AfterValidator(_utc)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors --------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. not_found, consent_required.")
    message: str = Field(description="What went wrong, for a person.")


class ErrorOut(BaseModel):
    """The one error shape every failure has, whatever its status."""

    error: ErrorDetail


# -- keys ----------------------------------------------------------------------------------


class KeyCreateIn(Strict):
    role: Role
    label: Label = Field(description="What the key is for, e.g. 'case desk laptop'.")
    expires_at: Moment | None = None


class KeyOut(BaseModel):
    id: str
    role: Role
    label: str
    created_at: Utc
    expires_at: Utc | None = None
    revoked_at: Utc | None = None
    last_used_at: Utc | None = None


class KeyCreatedOut(BaseModel):
    key: KeyOut
    secret: str = Field(description="The bearer token. Shown once; faceward keeps only a hash of it.")
    notice: str = "Store this secret now: it cannot be shown again."


class KeyListOut(BaseModel):
    keys: list[KeyOut]


# -- subjects ------------------------------------------------------------------------------


class ConsentIn(Strict):
    basis: LawfulBasis = Field(description="GDPR Art. 9(2) condition for processing the subject's biometric data.")
    reference: Reference = Field(description="The record that proves the consent or basis, e.g. a form number.")
    given_at: Moment
    expires_at: Moment | None = None


class SubjectIn(Strict):
    display_name: Name = Field(description="How reviewers will see the subject.")
    consent: ConsentIn


class ConsentOut(BaseModel):
    basis: str
    reference: str
    given_at: Utc
    expires_at: Utc | None = None


class FaceSummary(BaseModel):
    id: str
    model_id: str
    quality: dict[str, float]
    created_at: Utc


class SubjectOut(BaseModel):
    id: str
    display_name: str
    consent: ConsentOut
    created_at: Utc
    faces: list[FaceSummary] = Field(default_factory=list)


class SubjectListOut(BaseModel):
    subjects: list[SubjectOut]
    limit: int
    offset: int


class ErasureOut(BaseModel):
    subject_id: str
    erased: Literal[True] = True
    faces_erased: int


ROTATION_CW = (
    "The clockwise turn, in degrees, that makes this face upright: not 0 when the photo is on its side or upside "
    "down with no EXIF orientation (the face was found on the photo turned; its box is on the photo as sent)."
)


class FaceOut(BaseModel):
    id: str
    subject_id: str
    quality: dict[str, float]
    box: dict[str, int]
    image_sha256: str
    duplicate: bool = Field(description="True when this exact image was already enrolled for the subject.")
    bystanders: list[dict[str, int]] = Field(
        default_factory=list,
        description="Other faces in the photo, much smaller than the subject's and apart from it: not enrolled.",
    )
    rotation_cw: Literal[0, 90, 180, 270] = Field(default=0, description=ROTATION_CW)
    warnings: list[str] = Field(
        default_factory=list,
        description="What this face costs matching: enrolled, but blurred or turned enough that other photos of the "
        "person are found less often (each with what was measured); a better photo may be enrolled beside it.",
    )


class MigrationOut(BaseModel):
    from_model_id: str = Field(description="The model the gallery's searchable templates come from until the switch.")
    to_model_id: str = Field(description="This server's model, whose templates the migration builds.")


class MigrationFinishIn(Strict):
    require_all: bool = Field(default=False, description="Switch only if every subject has a template of the new model.")


class MigrationReportOut(BaseModel):
    tenant_id: str
    old_model_id: str | None
    new_model_id: str
    switched: bool
    subjects: int
    subjects_migrated: int
    faces_migrated: int
    old_faces_removed: int
    without_new_faces: list[dict[str, str]] = Field(description="Subjects left without a template of the new model.")


# -- search and verify ---------------------------------------------------------------------


class CandidateOut(BaseModel):
    subject_id: str
    display_name: str
    score: float = Field(description="Cosine similarity of the probe and the subject's best face.")
    estimated_fmr: float | None = Field(description="Calibrated false match rate at this score; null for an uncalibrated custom model.")
    decision: Decision
    rank: int
    lead_only: Literal[True] = Field(
        description="Always true: an investigative lead for a trained person to review, never an identification."
    )
    face_id: str | None = Field(default=None, description="The subject's face that matched best (its thumbnail).")
    review_token: str | None = Field(
        default=None, description="For keys that may review: pass it to POST /v1/reviews to review this candidate."
    )


class ProbeFaceOut(BaseModel):
    box: dict[str, int]
    detector: str
    quality: dict[str, float]
    rotation_cw: Literal[0, 90, 180, 270] = Field(default=0, description=ROTATION_CW)


class ThresholdOut(BaseModel):
    score: float
    target_fmr: float
    fmr_resolution: float | None = Field(
        default=None,
        description="The calibration's resolution, 1 / impostor pairs measured: no FMR below it is claimed; "
        "null for an uncalibrated model.",
    )


class SearchOut(BaseModel):
    candidates: list[CandidateOut]
    probe_face: ProbeFaceOut
    faces_in_probe: int
    gallery_faces: int
    threshold: ThresholdOut
    warnings: list[str]
    model_id: str
    calibrated: bool = Field(
        description="True when the model's scores were calibrated (shipped table, or `faceward models calibrate`)."
    )
    notice: str
    search_id: str | None = Field(default=None, description="This search's id (in its audit entry); reviews name it.")
    thumbnails: bool = Field(default=False, description="Whether this key may see the candidates' face thumbnails.")


class VerifyOut(BaseModel):
    score: float
    estimated_fmr: float | None
    decision: Decision
    threshold: float
    compared_faces: int
    calibrated: bool
    fmr_resolution: float | None = Field(
        default=None, description="The calibration's resolution, 1 / impostor pairs measured; null when uncalibrated."
    )
    warnings: list[str] = Field(
        default_factory=list, description="E.g. a photo showing several faces (which one was compared), an uncalibrated model."
    )
    notice: str


# -- oversight -----------------------------------------------------------------------------


class UsageCount(BaseModel):
    key_id: str
    kind: str = Field(description="The act counted: search, verify, face.enroll, ...")
    day: str = Field(description="UTC day, YYYY-MM-DD.")
    count: int


class UsageOut(BaseModel):
    tenant_id: str
    keys: dict[str, int] = Field(description="Live (unrevoked) keys by role.")
    subjects: int
    faces: int
    searches: dict[str, dict[str, int]] = Field(description="Searches by key id, then by UTC day.")
    usage: list[UsageCount]


class AuditEntryOut(BaseModel):
    seq: int = Field(description="Position in the tenant's hash chain, from 1.")
    at: Utc
    actor: str = Field(description="key:<key id>, person:<issuer> <subject> (console sign-in), or operator.")
    actor_name: str | None = Field(default=None, description="A person's display name, as their provider last gave it.")
    action: str
    source: str | None = None
    details: dict[str, Any] = Field(description="Ids, hashes, the stated purpose and case reference; never images or names.")


class AuditListOut(BaseModel):
    entries: list[AuditEntryOut]
    limit: int
    offset: int


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"


__all__ = [
    "TEXT_PATTERN", "AuditEntryOut", "AuditListOut", "CandidateOut", "ConsentIn", "ConsentOut", "ErasureOut",
    "ErrorDetail", "ErrorOut", "FaceOut", "FaceSummary", "HealthOut", "KeyCreateIn", "KeyCreatedOut", "KeyListOut",
    "KeyOut", "Label", "MigrationFinishIn", "MigrationOut", "MigrationReportOut", "Moment", "Name", "ProbeFaceOut",
    "Reference", "SearchOut", "Strict", "SubjectIn", "SubjectListOut", "SubjectOut", "ThresholdOut", "UsageCount",
    "UsageOut", "Utc", "VerifyOut",
]
