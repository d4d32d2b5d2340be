"""Opening a gallery's sealed templates for its index (and the doctor)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from faceward.security.vault import TenantVault
from faceward.services.tenancy import gallery_dim
from faceward.store import FaceRecord, SqlStore
from faceward.vision.embed import from_template


class TemplateReader:
    """The templates of stored faces, opened under their subjects' keys."""

    def __init__(self, store: SqlStore, vault: TenantVault, engine_dim: Callable[[], int]) -> None:
        self.store, self.vault, self._engine_dim = store, vault, engine_dim

    def open(self, faces: list[FaceRecord]) -> np.ndarray:
        """The faces' templates, ``N x d``; NaN rows for faces nothing may search.

        Those are faces of an erased subject and, during a migration, the new
        model's templates (and, after it, any left of the old model): only the
        gallery's own model is ever searched.
        """
        tenant_id = faces[0].tenant_id
        tenant = self.store.get_tenant(tenant_id)
        model = tenant.profile.model_id
        dim = gallery_dim(tenant, self._engine_dim()) if model else self._engine_dim()
        subjects = self.store.subjects_by_id(tenant_id, sorted({f.subject_id for f in faces}))
        out = np.full((len(faces), dim), np.nan, dtype=np.float32)
        for row, face in enumerate(faces):
            if face.subject_id not in subjects or (model and face.model_id != model):
                continue
            vector = from_template(self.vault.open_template(subjects[face.subject_id], face.id, face.template_sealed))
            if len(vector) == dim:
                out[row] = vector
        return out


__all__ = ["TemplateReader"]
