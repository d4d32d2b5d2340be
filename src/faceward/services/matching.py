"""Search and verify: a probe's face against the tenant's gallery, or against one subject, or two photos.

Results are leads for a person to review, with a calibrated false-match
estimate, never identifications; the decision is the scoring's
(:meth:`~faceward.scoring.Calibration.decide`).
"""

from __future__ import annotations

from dataclasses import replace

from dataclasses import dataclass

import numpy as np

from faceward.errors import InvalidInput
from faceward.index.tenants import SearchIndexes
from faceward.scoring import Uncalibrated, fpir_threshold_fmr
from faceward.security.vault import TenantVault
from faceward.services.analysis import Analysis
from faceward.services.subjects import Subjects
from faceward.services.tenancy import Tenants, check_model
from faceward.services.views import Candidate, SearchResult, VerifyResult
from faceward.store import SqlStore, TenantRecord
from faceward.vision import PROBE_LIMITS, refusals
from faceward.vision.embed import from_template
from faceward.vision.orientation import described
from faceward.vision.types import Face

MAX_K = 50


@dataclass(frozen=True)
class Probe:
    face: Face
    faces_in_image: int
    image_sha256: str
    warnings: list[str]


class Matching:
    def __init__(
        self, store: SqlStore, vault: TenantVault, tenants: Tenants, subjects: Subjects, analysis: Analysis,
        indexes: SearchIndexes, target_fmr: float,
    ) -> None:
        self.store, self.vault, self.tenants, self.subjects = store, vault, tenants, subjects
        self.analysis, self.indexes, self.target_fmr = analysis, indexes, target_fmr

    def _probe(
        self, tenant_id: str, image: bytes, face: int | None, what: str = "probe", verb: str = "searched"
    ) -> tuple[Face, int, str, list[str]]:
        """The face to match in ``image``: its subject (the most prominent face, as enrollment picks it), or
        the ``face``-th (0 = largest, as ``detect`` lists them); how many faces the image shows; its SHA-256;
        warnings when it shows several, or is not upright."""
        if face is None:
            probe, count, digest = self.analysis.subject(image, what, tenant_id)
        else:
            found, digest = self.analysis.faces(image, tenant_id, embed=face)
            count = len(found)
            if not 0 <= face < count:
                raise InvalidInput(f"the {what} shows {count} face(s); face must be 0 to {count - 1}", code="no_such_face")
            probe = found[face]
        warnings = []
        if count > 1:
            which = "its subject (the most prominent)" if face is None else f"face {face + 1}"
            warnings.append(f"{count} faces in the {what}; {verb} {which}")
        if probe.rotation_cw:
            warnings.append(f"the {what} {described(probe.rotation_cw)} (no EXIF orientation): its face was found "
                            f"with the photo turned {probe.rotation_cw} degrees clockwise")
        return probe, count, digest, warnings

    def search(self, tenant_id: str, image: bytes, *, k: int = 10, face: int | None = None) -> SearchResult:
        """Search with the probe's subject (most prominent face), or with its ``face``-th (0 = largest, as ``detect`` lists them)."""
        return self.match(tenant_id, self.probe(self.tenants.active(tenant_id), image, k=k, face=face), k=k)

    def probe(self, tenant: TenantRecord, image: bytes, *, k: int, face: int | None) -> Probe:
        """The probe's face, analysed (no store access: run it before the act's unit of work)."""
        if not 1 <= k <= MAX_K:
            raise InvalidInput(f"k must be between 1 and {MAX_K}")
        check_model(tenant, self.analysis.model_id)
        return Probe(*self._probe(tenant.id, image, face))

    def match(self, tenant_id: str, found: Probe, *, k: int = 10) -> SearchResult:
        """The gallery's candidates for an analysed probe (index, names: the store part of a search)."""
        probe, count, digest = found.face, found.faces_in_image, found.image_sha256
        warnings = [f"probe quality: {p}" for p in refusals(probe.quality, PROBE_LIMITS, "probe")] + list(found.warnings)
        scoring = self.analysis.scoring
        threshold = scoring.threshold(self.target_fmr)
        if isinstance(scoring, Uncalibrated):
            warnings.append(scoring.warning)
        assert probe.descriptor is not None
        entry, gallery, labels, scores = self.indexes.search(tenant_id, probe.descriptor[None, :], k * 8)
        best: dict[str, tuple[float, str]] = {}
        for label, score in zip(labels[0], scores[0]):
            owner = entry.owner.get(int(label))
            if label < 0 or owner is None:
                continue
            face_id, subject_id = owner
            if subject_id not in best or score > best[subject_id][0]:
                best[subject_id] = (float(score), face_id)
        ranked = sorted(best.items(), key=lambda item: -item[1][0])[:k]
        records = self.store.subjects_by_id(tenant_id, [s for s, _ in ranked])
        candidates: list[Candidate] = []
        for subject_id, (score, face_id) in ranked:
            record = records.get(subject_id)
            if record is None:  # erased between index and read: never show it
                continue
            candidates.append(
                Candidate(
                    subject_id, self.subjects.name(record), score, scoring.estimated_fmr(score),
                    scoring.decide(score, self.target_fmr), len(candidates) + 1, face_id,
                )
            )
        return SearchResult(
            candidates, probe.summary(), count, gallery, threshold, self.target_fmr, digest, warnings,
            self.analysis.model_id, calibrated=not isinstance(scoring, Uncalibrated), fmr_resolution=scoring.fmr_floor,
        )

    def gallery_threshold(self, gallery_size: int, target_fpir: float) -> float:
        """Score threshold that holds the open-set false positive identification rate at ``target_fpir``.

        An uncalibrated model has one fixed threshold, whatever the gallery size.
        """
        return self.analysis.scoring.threshold(fpir_threshold_fmr(target_fpir, gallery_size))

    def _verdict(self, score: float, compared: int) -> VerifyResult:
        scoring = self.analysis.scoring
        warnings = [scoring.warning] if isinstance(scoring, Uncalibrated) else []
        return VerifyResult(
            score, scoring.estimated_fmr(score), scoring.decide(score, self.target_fmr),
            scoring.threshold(self.target_fmr), compared, warnings, scoring.fmr_floor,
        )

    def verify_images(
        self, tenant_id: str, image_a: bytes, image_b: bytes, *, face_a: int | None = None, face_b: int | None = None
    ) -> VerifyResult:
        """Compare the subject (or the chosen face) of each photo; warns when a photo shows several."""
        self.tenants.active(tenant_id)
        probe_a, _, _, warn_a = self._probe(tenant_id, image_a, face_a, "first image", "compared")
        probe_b, _, _, warn_b = self._probe(tenant_id, image_b, face_b, "second image", "compared")
        assert probe_a.descriptor is not None and probe_b.descriptor is not None
        result = self._verdict(float(probe_a.descriptor @ probe_b.descriptor), 1)
        return replace(result, warnings=warn_a + warn_b + result.warnings)

    def verify_subject(self, tenant_id: str, image: bytes, subject_id: str, *, face: int | None = None) -> VerifyResult:
        """Compare the photo's subject (or chosen face) with every face of the enrolled subject; the best match decides."""
        check_model(self.tenants.active(tenant_id), self.analysis.model_id)
        subject = self.store.get_subject(tenant_id, subject_id)
        faces = [f for f in self.store.faces_of(tenant_id, subject_id) if f.model_id == self.analysis.model_id]
        if not faces:
            raise InvalidInput("this subject has no enrolled face yet", code="no_faces")
        probe, _, _, several = self._probe(tenant_id, image, face, "image", "compared")
        assert probe.descriptor is not None
        gallery = np.stack([from_template(self.vault.open_template(subject, f.id, f.template_sealed)) for f in faces])
        result = self._verdict(float(np.max(gallery @ probe.descriptor)), len(faces))
        return replace(result, warnings=several + result.warnings)


__all__ = ["MAX_K", "Matching", "Probe"]
