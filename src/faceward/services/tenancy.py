"""Tenants as the gallery use cases see them: created with a sealed name and a wrapped key, active or not,
and the model their gallery holds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from faceward.errors import FacewardError, InvalidInput, NotFound
from faceward.security.vault import TenantVault
from faceward.services.ids import new_id
from faceward.store import SqlStore, TenantRecord

from faceward.store.profile import DLIB_EMBEDDING_SIZE, MIGRATING_TO

MIGRATION_KEY = MIGRATING_TO  # tenant setting while a gallery moves to another model


class ModelMismatch(FacewardError):
    code = "model_mismatch"
    status = 409


class TenantSuspended(FacewardError):
    code = "tenant_suspended"
    status = 403


def gallery_model(tenant: TenantRecord) -> str | None:
    """The model id the tenant's gallery holds (``None`` before its first enrollment)."""
    return tenant.profile.model_id


def gallery_dim(tenant: TenantRecord, default: int) -> int:
    """The size of the tenant's templates: recorded at first enrollment; ``default`` (the engine's) before."""
    return tenant.profile.embedding_size(default)


def check_model(tenant: TenantRecord, model_id: str) -> None:
    """Refuse an engine that makes another model's templates than the gallery holds."""
    held = tenant.profile.model_id
    if held and held != model_id:
        raise ModelMismatch(
            f"this gallery holds {held} templates and the engine makes {model_id}; "
            "migrate the gallery with `faceward reenroll` to change models"
        )


class Tenants:
    """Create tenants and admit acts only on active ones."""

    def __init__(self, store: SqlStore, vault: TenantVault, clock: Callable[[], datetime]) -> None:
        self.store, self.vault, self.clock = store, vault, clock

    def create(self, name: str) -> str:
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput("a tenant name of 1 to 200 characters is required")
        tenant_id = new_id("t_")
        sealed = self.vault.seal_new_tenant(tenant_id, name)
        self.store.add_tenant(
            TenantRecord(
                id=tenant_id, name_sealed=sealed.name_sealed, wrapped_key=sealed.wrapped_key, status="active",
                created_at=self.clock(), settings={},
            )
        )
        return tenant_id

    def name(self, record: TenantRecord) -> str:
        return self.vault.open_tenant_name(record)

    def active(self, tenant_id: str) -> TenantRecord:
        tenant = self.store.get_tenant(tenant_id)
        if tenant.wrapped_key is None:
            raise NotFound("no such tenant")
        if tenant.status != "active":
            raise TenantSuspended("this organisation's access is suspended")
        return tenant


__all__ = [
    "DLIB_EMBEDDING_SIZE", "MIGRATION_KEY", "ModelMismatch", "TenantSuspended", "Tenants", "check_model", "gallery_dim",
    "gallery_model",
]
