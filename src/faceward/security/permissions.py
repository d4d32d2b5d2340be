"""Roles and permissions: closed enums, permissions spelled ``scope:resource:action``.

Which role holds which permission is decided in :mod:`faceward.security.policy`
and nowhere else.
"""

from __future__ import annotations

from enum import Enum


class Role(str, Enum):
    """What an API key is for. A tenant's first key is an admin key; admins mint the others."""

    ADMIN = "admin"
    ENROLLER = "enroller"
    SEARCHER = "searcher"
    AUDITOR = "auditor"


class Permission(str, Enum):
    KEYS_MANAGE = "tenant:keys:manage"
    USAGE_READ = "tenant:usage:read"
    AUDIT_READ = "tenant:audit:read"
    SUBJECTS_READ = "gallery:subjects:read"
    SUBJECTS_WRITE = "gallery:subjects:write"
    FACES_WRITE = "gallery:faces:write"
    SEARCH = "gallery:search:run"
    VERIFY = "gallery:verify:run"
    # The web console's examination steps (#6): see a probe's faces before searching, see enrolled
    # faces' thumbnails and the reviews of candidates, record a review; the tenant's own settings.
    DETECT = "gallery:detect:run"
    REVIEW_READ = "gallery:review:read"
    REVIEW_WRITE = "gallery:review:write"
    SETTINGS_MANAGE = "tenant:settings:manage"
    # Moving the gallery to another model (``faceward reenroll``, or its API for an admin).
    GALLERY_MIGRATE = "gallery:model:migrate"
    # Connect the organisation's OpenID Connect provider and map its groups to roles (decision 021).
    SIGN_IN_MANAGE = "tenant:sign_in:manage"


__all__ = ["Permission", "Role"]
