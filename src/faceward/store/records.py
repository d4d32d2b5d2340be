"""Storage records: what the store keeps, sealed columns as opaque bytes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from faceward.store.profile import TenantProfile


@dataclass(frozen=True, slots=True)
class TenantRecord:
    id: str
    name_sealed: bytes
    wrapped_key: bytes | None
    status: str
    created_at: datetime
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def profile(self) -> TenantProfile:
        """The typed meaning of ``settings`` (model, migration, thumbnails, retention, ...)."""
        return TenantProfile(self.settings)


@dataclass(frozen=True, slots=True)
class SubjectRecord:
    id: str
    tenant_id: str
    display_name_sealed: bytes
    consent_basis: str
    consent_reference_sealed: bytes
    consent_given_at: datetime
    consent_expires_at: datetime | None
    wrapped_key: bytes
    created_at: datetime
    external_ref: str | None = None


@dataclass(frozen=True, slots=True)
class FaceRecord:
    id: str
    tenant_id: str
    subject_id: str
    model_id: str
    template_sealed: bytes
    quality: dict[str, float]
    image_sha256: str
    created_at: datetime
    seq: int = 0
    model_sha256: str | None = None  # the recognizer's full SHA-256 (None: made before it was recorded)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    tenant_id: str
    secret_hash: bytes
    role_sealed: bytes
    label_sealed: bytes
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    tenant_id: str
    seq: int
    at: datetime
    payload_sealed: bytes
    mac: bytes


@dataclass(frozen=True, slots=True)
class UsageRecord:
    tenant_id: str
    bucket: str
    day: date
    owner_sealed: bytes
    count_sealed: bytes
