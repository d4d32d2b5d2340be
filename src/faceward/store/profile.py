"""A tenant's profile: the typed meaning of the ``tenants.settings`` JSON column.

The use cases read ``tenant.profile.model_id`` rather than ``tenant.settings.get("model_id")``,
so each key's name, type and default exist once, here. Writes go through
:meth:`TenantProfile.settings_with`, which keeps keys this version does not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faceward.errors import InvalidInput

MODEL_ID = "model_id"
EMBEDDING_SIZE = "embedding_size"
MODEL_SHA256 = "model_sha256"
MIGRATING_TO = "migrating_to"  # while a gallery moves to another model
THUMBNAILS = "thumbnails"
RETENTION_DAYS = "retention_days"
TRANSFORM_GENERATION = "template_transform_generation"  # the tenant's Milvus template transform (decision 016)

DLIB_EMBEDDING_SIZE = 128  # galleries enrolled before settings recorded a size hold dlib's templates
RETENTION_MAX_DAYS = 36_500


@dataclass(frozen=True)
class MigrationTarget:
    """The model a gallery is moving to (``faceward reenroll``)."""

    model_id: str
    embedding_size: int
    model_sha256: str | None
    started_at: str | None


@dataclass(frozen=True)
class TenantProfile:
    settings: dict[str, Any]

    @property
    def model_id(self) -> str | None:
        """The model the gallery's templates come from; None before the first enrollment."""
        model = self.settings.get(MODEL_ID)
        return str(model) if model else None

    def embedding_size(self, default: int) -> int:
        """The size of the gallery's templates: recorded at first enrollment; ``default`` (the engine's) before."""
        if self.model_id is None:
            return default
        return int(self.settings.get(EMBEDDING_SIZE, DLIB_EMBEDDING_SIZE))

    @property
    def recorded_embedding_size(self) -> int | None:
        size = self.settings.get(EMBEDDING_SIZE)
        return None if size is None else int(size)

    @property
    def migrating_to(self) -> MigrationTarget | None:
        target = self.settings.get(MIGRATING_TO) or {}
        if not target.get(MODEL_ID):
            return None
        return MigrationTarget(str(target[MODEL_ID]), int(target[EMBEDDING_SIZE]), target.get(MODEL_SHA256),
                               target.get("started_at"))

    @property
    def thumbnails(self) -> bool:
        """Whether enrolled faces' thumbnails are kept for reviewers (on unless switched off)."""
        return self.settings.get(THUMBNAILS, True) is not False

    @property
    def retention_days(self) -> int | None:
        """Days a subject is kept after enrollment; None: until erased or its consent expires."""
        return checked_retention(self.settings.get(RETENTION_DAYS))

    @property
    def transform_generation(self) -> int:
        return int(self.settings.get(TRANSFORM_GENERATION, 0))

    def settings_with(self, **changes: Any) -> dict[str, Any]:
        """The settings with ``changes`` applied (a value of None removes the key); other keys are kept."""
        out = dict(self.settings)
        for key, value in changes.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = value
        return out


def checked_retention(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= RETENTION_MAX_DAYS:
        raise InvalidInput(f"retention_days must be a whole number of days from 1 to {RETENTION_MAX_DAYS}")
    return value


__all__ = [
    "DLIB_EMBEDDING_SIZE", "EMBEDDING_SIZE", "MIGRATING_TO", "MODEL_ID", "MODEL_SHA256", "RETENTION_DAYS",
    "RETENTION_MAX_DAYS", "THUMBNAILS", "TRANSFORM_GENERATION", "MigrationTarget", "TenantProfile", "checked_retention",
]
