"""Thumbnails: each enrolled face's aligned chip, kept so that a reviewer can compare a candidate with the probe.

The chip is the 150 x 150 crop the descriptor was computed from, re-encoded as JPEG
(quality :data:`JPEG_QUALITY`, a few kB) and sealed with the *subject's* key, like the
template: erasing the subject (which destroys that key and deletes the face) takes the
thumbnail with it, in backups too. Only roles that may review see them
(``gallery:review:read``).

A tenant can turn thumbnails off (``thumbnails: false`` in its settings): from then on
no chip is kept, every stored one is deleted at once, and the thumbnail route answers
404 ``thumbnails_off``. Turning them on again keeps chips of faces enrolled afterwards.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from faceward.errors import NotFound
from faceward.services.gallery import GalleryService
from faceward.store import SubjectRecord, TenantRecord
from faceward.store.profile import THUMBNAILS
from faceward.store.reviews import ChipRecord, ReviewStore

JPEG_QUALITY = 85
SETTING = THUMBNAILS


class ThumbnailsOff(NotFound):
    code = "thumbnails_off"


def enabled(tenant: TenantRecord) -> bool:
    """Thumbnails are on unless the tenant turned them off."""
    return tenant.profile.thumbnails


def encode_chip(chip: np.ndarray) -> bytes:
    """An ``H x W x 3`` uint8 RGB chip as a baseline JPEG."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(chip, dtype=np.uint8)).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


class Thumbnails:
    """Keep, read and purge enrolled faces' thumbnails. :meth:`keep` is the gallery's chip sink."""

    def __init__(self, gallery: GalleryService) -> None:
        self.gallery = gallery
        self._repo = ReviewStore(gallery.store)

    def keep(self, tenant: TenantRecord, subject: SubjectRecord, face_id: str, chip: np.ndarray) -> None:
        if not enabled(tenant):
            return
        sealed = self.gallery.vault.seal_chip(subject, face_id, encode_chip(chip))
        self._repo.add_chip(ChipRecord(face_id, tenant.id, subject.id, sealed, self.gallery.clock()))

    def read(self, tenant_id: str, face_id: str) -> bytes:
        """The JPEG of a face of this tenant; :class:`NotFound` for an unknown face or one without a thumbnail."""
        if not enabled(self.gallery.store.get_tenant(tenant_id)):
            raise ThumbnailsOff("thumbnails are turned off for this organisation")
        record = self._repo.chip(tenant_id, face_id)
        if record is None:
            raise NotFound("no thumbnail for this face")
        subject = self.gallery.store.get_subject(tenant_id, record.subject_id)
        return self.gallery.vault.open_chip(subject, face_id, record.chip_sealed)

    def settings(self, tenant_id: str) -> dict[str, bool]:
        return {SETTING: enabled(self.gallery.store.get_tenant(tenant_id))}

    def set_enabled(self, tenant_id: str, on: bool) -> int:
        """Turn thumbnails on or off; turning them off deletes every stored one. Returns how many were deleted."""
        tenant = self.gallery.active_tenant(tenant_id)
        if enabled(tenant) != on:
            self.gallery.store.update_tenant(tenant_id, settings=tenant.profile.settings_with(**{SETTING: on}))
        return 0 if on else self._repo.delete_chips(tenant_id)


__all__ = ["JPEG_QUALITY", "Thumbnails", "ThumbnailsOff", "enabled", "encode_chip"]
