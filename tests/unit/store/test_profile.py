"""A tenant's profile: the typed reading of its settings column, and writes that keep unknown keys."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from faceward.errors import InvalidInput
from faceward.store import TenantRecord
from faceward.store.profile import MigrationTarget, TenantProfile


def tenant(settings: dict) -> TenantRecord:  # type: ignore[type-arg]
    return TenantRecord("t_1", b"", b"k", "active", datetime(2026, 1, 1, tzinfo=timezone.utc), settings)


def test_a_new_gallery_has_no_model_and_takes_the_engines_size() -> None:
    profile = tenant({}).profile
    assert profile.model_id is None and profile.embedding_size(512) == 512
    assert profile.migrating_to is None and profile.thumbnails and profile.retention_days is None
    assert profile.transform_generation == 0


def test_a_gallery_enrolled_before_sizes_were_recorded_holds_dlib_templates() -> None:
    assert tenant({"model_id": "dlib-resnet-v1/flip"}).profile.embedding_size(512) == 128
    assert tenant({"model_id": "own", "embedding_size": 256}).profile.embedding_size(128) == 256


def test_a_migration_target_is_typed() -> None:
    profile = tenant({"model_id": "a", "migrating_to": {"model_id": "b", "embedding_size": 256, "model_sha256": "x"}}).profile
    assert profile.migrating_to == MigrationTarget("b", 256, "x", None)


def test_thumbnails_are_on_unless_switched_off_and_retention_is_checked() -> None:
    assert tenant({"thumbnails": False}).profile.thumbnails is False
    assert tenant({"retention_days": 30}).profile.retention_days == 30
    for bad in (0, True, "30", 36_501):
        with pytest.raises(InvalidInput, match="retention_days"):
            tenant({"retention_days": bad}).profile.retention_days


def test_writes_keep_keys_they_do_not_name_and_none_removes_one() -> None:
    profile = TenantProfile({"model_id": "a", "migrating_to": {"model_id": "b"}, "from_a_newer_version": 1})
    assert profile.settings_with(migrating_to=None, model_id="b") == {"model_id": "b", "from_a_newer_version": 1}
    assert profile.settings == {"model_id": "a", "migrating_to": {"model_id": "b"}, "from_a_newer_version": 1}
