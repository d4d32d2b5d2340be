"""What the gallery use cases return: plain, frozen values (their ``as_dict`` is the API's JSON shape)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from faceward.scoring import Decision
from faceward.vision.types import Quality

LEAD_NOTICE = "Investigative lead only: a candidate must be reviewed by a trained person; it is not an identification."


@dataclass(frozen=True)
class MigrationReport:
    """What :meth:`GalleryService.finish_migration` did (or would do): one gallery moving to another model."""

    tenant_id: str
    old_model_id: str | None
    new_model_id: str
    switched: bool
    subjects: int
    subjects_migrated: int
    faces_migrated: int
    old_faces_removed: int
    without_new_faces: list[dict[str, str]] = field(default_factory=list)  # subject id and name

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id, "old_model_id": self.old_model_id, "new_model_id": self.new_model_id,
            "switched": self.switched, "subjects": self.subjects, "subjects_migrated": self.subjects_migrated,
            "faces_migrated": self.faces_migrated, "old_faces_removed": self.old_faces_removed,
            "without_new_faces": self.without_new_faces,
        }


@dataclass(frozen=True)
class SubjectView:
    id: str
    display_name: str
    consent_basis: str
    consent_reference: str
    consent_given_at: datetime
    consent_expires_at: datetime | None
    created_at: datetime
    faces: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class FaceView:
    id: str
    subject_id: str
    quality: dict[str, float]
    box: dict[str, int]
    image_sha256: str
    duplicate: bool = False
    bystanders: list[dict[str, int]] = field(default_factory=list)  # other faces in the photo, not enrolled
    rotation_cw: int = 0  # the turn that made the face upright: the photo was not (decision 035)
    warnings: list[str] = field(default_factory=list)  # what the enrolled face costs matching (decision 037)


@dataclass(frozen=True)
class Candidate:
    subject_id: str
    display_name: str
    score: float
    estimated_fmr: float | None  # None: the model is uncalibrated
    decision: Decision
    rank: int
    face_id: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject_id": self.subject_id, "display_name": self.display_name, "score": round(self.score, 5),
            "estimated_fmr": self.estimated_fmr, "decision": self.decision.value, "rank": self.rank,
            "lead_only": True,
        }


@dataclass(frozen=True)
class SearchResult:
    candidates: list[Candidate]
    probe: dict[str, Any]
    faces_in_probe: int
    gallery_size: int
    threshold: float
    target_fmr: float
    probe_sha256: str
    warnings: list[str]
    model_id: str
    calibrated: bool = True
    fmr_resolution: float | None = None  # 1 / impostor pairs the table was measured on

    def as_dict(self) -> dict[str, Any]:
        return {
            "candidates": [c.as_dict() for c in self.candidates],
            "probe_face": self.probe,
            "faces_in_probe": self.faces_in_probe,
            "gallery_faces": self.gallery_size,
            "threshold": {"score": self.threshold, "target_fmr": self.target_fmr, "fmr_resolution": self.fmr_resolution},
            "warnings": self.warnings,
            "model_id": self.model_id,
            "calibrated": self.calibrated,
            "notice": LEAD_NOTICE,
        }


@dataclass(frozen=True)
class ReviewableSearch:
    """A search as the act returns it: the result, its id (in its audit entry), and for reviewers each
    candidate's review token and whether thumbnails may be shown. Composed, not derived: the result
    is held as the matching produced it."""

    result: SearchResult
    search_id: str
    review_tokens: dict[str, str] = field(default_factory=dict)  # subject id -> token
    thumbnails: bool = False

    def as_dict(self) -> dict[str, Any]:
        data = self.result.as_dict()
        data["search_id"] = self.search_id
        data["thumbnails"] = self.thumbnails
        for candidate, out in zip(self.result.candidates, data["candidates"]):
            out["face_id"] = candidate.face_id
            out["review_token"] = self.review_tokens.get(candidate.subject_id)
        return data


@dataclass(frozen=True)
class VerifyResult:
    score: float
    estimated_fmr: float | None  # None: the model is uncalibrated
    decision: Decision
    threshold: float
    compared_faces: int
    warnings: list[str] = field(default_factory=list)
    fmr_resolution: float | None = None  # 1 / impostor pairs the table was measured on

    @property
    def calibrated(self) -> bool:
        return self.estimated_fmr is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 5), "estimated_fmr": self.estimated_fmr, "decision": self.decision.value,
            "threshold": self.threshold, "compared_faces": self.compared_faces, "calibrated": self.calibrated,
            "fmr_resolution": self.fmr_resolution, "warnings": self.warnings, "notice": LEAD_NOTICE,
        }


@dataclass(frozen=True)
class AnalysedFace:
    """A face analysed before the act (by the CLI's bulk workers): template, unrounded quality, box, image hash."""

    descriptor: np.ndarray
    quality: Quality
    box: dict[str, int]
    image_sha256: str
    faces_in_image: int


__all__ = ["AnalysedFace", "LEAD_NOTICE", "Candidate", "FaceView", "MigrationReport", "ReviewableSearch", "SearchResult", "SubjectView", "VerifyResult"]
