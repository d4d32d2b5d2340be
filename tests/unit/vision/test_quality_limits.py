"""Enrollment's limits are fitted on gallery photos, a search's on probes (decisions 022 and 037)."""

from __future__ import annotations

from faceward.settings import Settings
from faceward.vision import PROBE_LIMITS, QualityLimits, advisories, refusals
from faceward.vision.types import Quality


def quality(sharpness: float = 0.6, frontalness: float = 0.9, face_px: int = 120) -> Quality:
    return Quality(face_px=face_px, sharpness=sharpness, detector_score=0.95, frontalness=frontalness)


def test_the_settings_defaults_are_enrollments_limits() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert QualityLimits() == QualityLimits(
        settings.min_face_px, settings.min_sharpness, settings.min_detector_score, settings.min_frontalness
    )


def test_enrollment_refuses_a_profile_with_what_such_gallery_photos_cost() -> None:
    [reason] = refusals(quality(frontalness=0.02), QualityLimits())
    assert reason.startswith("head is turned too far (frontalness 0.02 < 0.05") and "74% of the time" in reason


def test_enrollment_takes_a_blurred_or_half_turned_face_and_says_what_it_costs() -> None:
    face = quality(sharpness=0.30, frontalness=0.10)
    assert refusals(face, QualityLimits()) == []
    blurred, turned = advisories(face)
    assert blurred.startswith("enrolled, but face is blurred (sharpness 0.30 < 0.38") and "84%" in blurred
    assert turned.startswith("enrolled, but head is turned too far (frontalness 0.10 < 0.15") and "84%" in turned
    assert advisories(quality()) == []


def test_a_probe_is_judged_on_the_probe_fit() -> None:
    [reason] = refusals(quality(sharpness=0.30), PROBE_LIMITS, "probe")
    assert "probes under 0.38 were found at rank 1 78%" in reason


def test_a_limit_nobody_measured_cites_no_evidence() -> None:
    [reason] = refusals(quality(sharpness=0.30), QualityLimits(min_sharpness=0.33))
    assert reason == "face is blurred (sharpness 0.30 < 0.33)"
