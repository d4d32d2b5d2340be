"""The tenant vault: the one holder of tenant and subject keys, and the one codec per sealed column.

Every sealed value in the store is opened and sealed here, so the associated
data scheme (tenant, table, row, column: see :func:`faceward.security.crypto.aad`)
exists once. Callers pass records and plain values; they never see a wrapped
key or build associated data.

Keys are unwrapped on first use and cached (tenant keys by tenant, subject keys
by subject and wrapped bytes); :meth:`TenantVault.forget` drops them after a
crypto-shred or a master key change, :meth:`TenantVault.forget_subjects` after
an erasure.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Protocol

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from faceward.errors import NotFound
from faceward.security import apikeys, templates
from faceward.security.crypto import TEXT_BUCKET, Keyring, aad, new_key, open_sealed, seal
from faceward.security.errors import SealError
from faceward.security.kms import TenantKeyWrapper
from faceward.security.permissions import Role
from faceward.store.records import ApiKeyRecord, TenantRecord


class TenantDirectory(Protocol):
    """Where the vault reads a tenant's wrapped key (the store)."""

    def get_tenant(self, tenant_id: str) -> TenantRecord: ...


class SubjectKeyed(Protocol):
    """Anything that carries a subject's wrapped key: a stored subject, or a :class:`SubjectKeyRef`."""

    @property
    def tenant_id(self) -> str: ...

    @property
    def id(self) -> str: ...

    @property
    def wrapped_key(self) -> bytes: ...


@dataclass(frozen=True)
class SubjectKeyRef:
    """A subject's wrapped key read on its own (the doctor reads keys in batches, without names)."""

    tenant_id: str
    id: str
    wrapped_key: bytes


@dataclass(frozen=True)
class SealedSubject:
    """A new subject's sealed columns and its wrapped key, ready to store."""

    display_name_sealed: bytes
    consent_reference_sealed: bytes
    wrapped_key: bytes


@dataclass(frozen=True)
class ReviewRefs:
    """The keyed hashes a review step is found by: its candidate (search, subject), its search, its subject."""

    candidate: str
    search: str
    subject: str


@dataclass(frozen=True)
class ReviewStepFacts:
    """What a review step says, sealed as one value (``reviews.step_sealed``)."""

    search_id: str
    subject_id: str
    face_id: str | None
    reviewer_key_id: str
    outcome: str


@dataclass(frozen=True)
class SealedTenant:
    name_sealed: bytes
    wrapped_key: bytes


def _derive(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


AUDIT_INFO = b"faceward/audit-chain/v1"
USAGE_INFO = b"faceward/usage-bucket/v1"
REVIEW_INFO = b"faceward/review-token/v1"
REVIEW_REF_INFO = b"faceward/review-ref/v1"
IMAGE_INFO = b"faceward/image-digest/v1"
SHREDDED_NAME = "(shredded)"


class TenantVault:
    """Unwraps and caches keys; seals and opens every sealed column of the store."""

    def __init__(self, keyring: TenantKeyWrapper, tenants: TenantDirectory) -> None:
        self._keyring = keyring
        self._tenants = tenants
        self._tenant_key = lru_cache(maxsize=4096)(self._load_tenant_key)
        self._subject_key = lru_cache(maxsize=65536)(self._load_subject_key)

    # -- keys --------------------------------------------------------------------------

    @property
    def keyring(self) -> TenantKeyWrapper:
        return self._keyring

    def use_keyring(self, keyring: TenantKeyWrapper) -> None:
        """Unwrap with ``keyring`` from now on (after a master key rotation); forgets every cached key."""
        self._keyring = keyring
        self.forget()

    def _load_tenant_key(self, tenant_id: str) -> bytes:
        tenant = self._tenants.get_tenant(tenant_id)
        if tenant.wrapped_key is None:
            raise NotFound("no such tenant")
        return self._keyring.tenant_key(tenant_id, tenant.wrapped_key)

    def _load_subject_key(self, tenant_id: str, subject_id: str, wrapped: bytes) -> bytes:
        return Keyring.subject_key(self._tenant_key(tenant_id), tenant_id, subject_id, wrapped)

    def tenant_key(self, tenant_id: str) -> bytes:
        """The tenant's data key, for the mechanisms of :mod:`faceward.security` that derive their own keys from it."""
        return self._tenant_key(tenant_id)

    def warm(self, tenant_id: str) -> None:
        """Unwrap the tenant's key now (before a transaction that must not open another to read it)."""
        self._tenant_key(tenant_id)

    def tenant_key_opens(self, tenant_id: str) -> bool:
        """Whether the tenant's wrapped key opens under this master key (the doctor's check)."""
        try:
            self._tenant_key(tenant_id)
        except SealError:
            return False
        return True

    def _subject(self, subject: SubjectKeyed) -> bytes:
        return self._subject_key(subject.tenant_id, subject.id, subject.wrapped_key)

    def subject_key_opens(self, subject: SubjectKeyed) -> bool:
        """Whether the subject's wrapped key opens under its tenant key (the doctor's check)."""
        try:
            self._subject(subject)
        except SealError:
            return False
        return True

    def forget(self) -> None:
        """Drop every cached key (a tenant was shredded, or the master key changed)."""
        self._tenant_key.cache_clear()
        self._subject_key.cache_clear()

    def forget_subjects(self) -> None:
        """Drop cached subject keys (a subject was erased)."""
        self._subject_key.cache_clear()

    def rewrap_tenant_key(self, tenant_id: str, wrapped: bytes, new: TenantKeyWrapper) -> bytes | None:
        """``wrapped`` re-wrapped under ``new`` (checked by a round trip); None when it already opens under ``new``.

        Raises :class:`SealError` when it opens under neither.
        """
        try:
            key = self._keyring.tenant_key(tenant_id, wrapped)
        except SealError:
            try:
                new.tenant_key(tenant_id, wrapped)
            except SealError:
                raise SealError(f"tenant {tenant_id}'s key opens under neither master key") from None
            return None
        rewrapped = new.wrap_tenant_key(tenant_id, key)
        if new.tenant_key(tenant_id, rewrapped) != key:
            raise SealError(f"the new master key failed a round trip for tenant {tenant_id}")
        return rewrapped

    # -- tenants -----------------------------------------------------------------------

    def seal_new_tenant(self, tenant_id: str, name: str) -> SealedTenant:
        key = new_key()
        return SealedTenant(
            name_sealed=seal(key, name.encode(), aad(tenant_id, "tenants", "name"), pad_to=TEXT_BUCKET),
            wrapped_key=self._keyring.wrap_tenant_key(tenant_id, key),
        )

    def open_tenant_name(self, record: TenantRecord) -> str:
        if record.wrapped_key is None:
            return SHREDDED_NAME
        return open_sealed(self._tenant_key(record.id), record.name_sealed, aad(record.id, "tenants", "name")).decode()

    # -- subjects ----------------------------------------------------------------------

    def seal_new_subject(self, tenant_id: str, subject_id: str, display_name: str, consent_reference: str) -> SealedSubject:
        key = new_key()
        return SealedSubject(
            display_name_sealed=seal(key, display_name.encode(), aad(tenant_id, "subjects", subject_id, "name"),
                                     pad_to=TEXT_BUCKET),
            consent_reference_sealed=seal(key, consent_reference.encode(), aad(tenant_id, "subjects", subject_id, "consent"),
                                          pad_to=TEXT_BUCKET),
            wrapped_key=Keyring.wrap_subject_key(self._tenant_key(tenant_id), tenant_id, subject_id, key),
        )

    def open_subject_name(self, subject: SubjectKeyed, sealed: bytes) -> str:
        t, s = subject.tenant_id, subject.id
        return open_sealed(self._subject(subject), sealed, aad(t, "subjects", s, "name")).decode()

    def open_consent_reference(self, subject: SubjectKeyed, sealed: bytes) -> str:
        t, s = subject.tenant_id, subject.id
        return open_sealed(self._subject(subject), sealed, aad(t, "subjects", s, "consent")).decode()

    def external_ref(self, tenant_id: str, reference: str) -> str:
        """The keyed hash a subject's outside reference is stored as (findable again, never readable)."""
        return hmac.new(self._tenant_key(tenant_id), b"ref:" + reference.encode(), hashlib.sha256).hexdigest()

    # -- faces -------------------------------------------------------------------------

    def image_digest(self, tenant_id: str, sha256_hex: str) -> str:
        """What ``faces.image_sha256`` stores for a photo: HMAC of its SHA-256 under a key of the tenant's.

        Deterministic within a tenant, so enrolling the same photo twice is still found (dedupe);
        a reader of the database holding the photo cannot tell whether it is enrolled, and the same
        photo in two tenants leaves two unrelated values (#12).
        """
        key = _derive(self._tenant_key(tenant_id), IMAGE_INFO)
        return hmac.new(key, bytes.fromhex(sha256_hex), hashlib.sha256).hexdigest()

    def seal_template(self, subject: SubjectKeyed, face_id: str, template: bytes) -> bytes:
        return seal(self._subject(subject), template, aad(subject.tenant_id, "faces", face_id))

    def open_template(self, subject: SubjectKeyed, face_id: str, sealed: bytes) -> bytes:
        return open_sealed(self._subject(subject), sealed, aad(subject.tenant_id, "faces", face_id))

    def seal_chip(self, subject: SubjectKeyed, face_id: str, jpeg: bytes) -> bytes:
        return seal(self._subject(subject), jpeg, aad(subject.tenant_id, "face_chips", face_id))

    def open_chip(self, subject: SubjectKeyed, face_id: str, sealed: bytes) -> bytes:
        return open_sealed(self._subject(subject), sealed, aad(subject.tenant_id, "face_chips", face_id))

    # -- reviews -----------------------------------------------------------------------

    def seal_review_note(self, subject: SubjectKeyed, review_id: str, note: str) -> bytes:
        return seal(self._subject(subject), note.encode(), aad(subject.tenant_id, "reviews", review_id, "note"),
                    pad_to=TEXT_BUCKET)

    def open_review_note(self, subject: SubjectKeyed, review_id: str, sealed: bytes) -> str:
        return open_sealed(self._subject(subject), sealed, aad(subject.tenant_id, "reviews", review_id, "note")).decode()

    def _review_ref(self, tenant_id: str, *parts: str) -> str:
        key = _derive(self._tenant_key(tenant_id), REVIEW_REF_INFO)
        return hmac.new(key, json.dumps(parts).encode(), hashlib.sha256).hexdigest()

    def review_subject_ref(self, tenant_id: str, subject_id: str) -> str:
        """The keyed hash review steps carry for their subject (erasure deletes the subject's steps by it)."""
        return self._review_ref(tenant_id, "subject", subject_id)

    def review_search_ref(self, tenant_id: str, search_id: str) -> str:
        return self._review_ref(tenant_id, "search", search_id)

    def review_refs(self, tenant_id: str, search_id: str, subject_id: str) -> ReviewRefs:
        """Keyed hashes, not ids: a reader of the database cannot tie a step to a search, a subject or the audit log."""
        return ReviewRefs(
            candidate=self._review_ref(tenant_id, "candidate", search_id, subject_id),
            search=self.review_search_ref(tenant_id, search_id),
            subject=self.review_subject_ref(tenant_id, subject_id),
        )

    def seal_review_step(self, tenant_id: str, review_id: str, facts: ReviewStepFacts) -> bytes:
        """Ids, reviewer and outcome under the tenant key, padded: every step seals to one length, whatever its outcome."""
        plain = json.dumps([facts.search_id, facts.subject_id, facts.face_id, facts.reviewer_key_id, facts.outcome])
        return seal(self._tenant_key(tenant_id), plain.encode(), aad(tenant_id, "reviews", review_id, "step"), pad_to=TEXT_BUCKET)

    def open_review_step(self, tenant_id: str, review_id: str, sealed: bytes) -> ReviewStepFacts:
        search_id, subject_id, face_id, reviewer, outcome = json.loads(
            open_sealed(self._tenant_key(tenant_id), sealed, aad(tenant_id, "reviews", review_id, "step"))
        )
        return ReviewStepFacts(str(search_id), str(subject_id), None if face_id is None else str(face_id), str(reviewer), str(outcome))

    def review_token(self, tenant_id: str, message: bytes) -> str:
        return hmac.new(_derive(self._tenant_key(tenant_id), REVIEW_INFO), message, hashlib.sha256).hexdigest()

    # -- API keys ----------------------------------------------------------------------

    def api_key_pepper(self, tenant_id: str) -> bytes:
        """The HMAC key of this tenant's API key hashes."""
        return apikeys.pepper(self._tenant_key(tenant_id))

    def seal_key_role(self, tenant_id: str, key_id: str, role: Role) -> bytes:
        return apikeys.seal_role(self._tenant_key(tenant_id), tenant_id, key_id, role)

    def open_key_role(self, record: ApiKeyRecord) -> Role:
        return apikeys.open_role(self._tenant_key(record.tenant_id), record)

    def seal_key_label(self, tenant_id: str, key_id: str, label: str) -> bytes:
        return apikeys.seal_label(self._tenant_key(tenant_id), tenant_id, key_id, label)

    def open_key_label(self, record: ApiKeyRecord) -> str:
        return apikeys.open_label(self._tenant_key(record.tenant_id), record)

    # -- OpenID Connect sign-in (decision 021) -----------------------------------------

    def seal_oidc_config(self, tenant_id: str, login_id: str, config: bytes) -> bytes:
        """The provider connection (issuer, client id and secret, role mapping) as one sealed value."""
        return seal(self._tenant_key(tenant_id), config, aad(tenant_id, "oidc_connections", login_id, "config"),
                    pad_to=TEXT_BUCKET * 4)

    def open_oidc_config(self, tenant_id: str, login_id: str, sealed: bytes) -> bytes:
        return open_sealed(self._tenant_key(tenant_id), sealed, aad(tenant_id, "oidc_connections", login_id, "config"))

    def person_ident(self, tenant_id: str, issuer: str, subject: str) -> str:
        """The keyed hash a person is found by: the same (issuer, subject) finds the same row, and a reader of
        the database holding a subject identifier cannot tell whether that person ever signed in."""
        message = json.dumps(["person", issuer, subject]).encode()
        return hmac.new(self._tenant_key(tenant_id), message, hashlib.sha256).hexdigest()

    def seal_person(self, tenant_id: str, person_id: str, profile: dict[str, str]) -> bytes:
        """Issuer, subject, display name and mapped role of a person, sealed together."""
        return seal(self._tenant_key(tenant_id), json.dumps(profile).encode(), aad(tenant_id, "people", person_id, "profile"),
                    pad_to=TEXT_BUCKET * 2)

    def open_person(self, tenant_id: str, person_id: str, sealed: bytes) -> dict[str, str]:
        plain = open_sealed(self._tenant_key(tenant_id), sealed, aad(tenant_id, "people", person_id, "profile"))
        return {str(k): str(v) for k, v in json.loads(plain).items()}

    # -- protected templates (decision 016) -------------------------------------------

    def template_transform(self, tenant_id: str, dim: int, generation: int) -> np.ndarray:
        """The tenant's secret orthonormal rotation applied to templates before they leave the process."""
        return templates.template_transform(self._tenant_key(tenant_id), tenant_id, dim, generation)

    # -- usage counters ----------------------------------------------------------------

    def usage_bucket(self, tenant_id: str, key_id: str, kind: str) -> str:
        key = _derive(self._tenant_key(tenant_id), USAGE_INFO)
        return hmac.new(key, f"{key_id}|{kind}".encode(), hashlib.sha256).hexdigest()

    def seal_usage_owner(self, tenant_id: str, bucket: str, key_id: str, kind: str) -> bytes:
        return seal(self._tenant_key(tenant_id), json.dumps([key_id, kind]).encode(), aad(tenant_id, "usage", bucket, "owner"),
                    pad_to=TEXT_BUCKET)

    def open_usage_owner(self, tenant_id: str, bucket: str, sealed: bytes) -> tuple[str, str]:
        key_id, kind = json.loads(open_sealed(self._tenant_key(tenant_id), sealed, aad(tenant_id, "usage", bucket, "owner")))
        return str(key_id), str(kind)

    def seal_usage_count(self, tenant_id: str, bucket: str, day: date, count: int) -> bytes:
        return seal(self._tenant_key(tenant_id), struct.pack(">Q", count), aad(tenant_id, "usage", bucket, day.isoformat(), "count"))

    def open_usage_count(self, tenant_id: str, bucket: str, day: date, sealed: bytes) -> int:
        plain = open_sealed(self._tenant_key(tenant_id), sealed, aad(tenant_id, "usage", bucket, day.isoformat(), "count"))
        (count,) = struct.unpack(">Q", plain)
        return int(count)


__all__ = [
    "AUDIT_INFO", "SHREDDED_NAME", "ReviewRefs", "ReviewStepFacts", "SealedSubject", "SealedTenant", "SubjectKeyRef", "SubjectKeyed", "TenantDirectory",
    "TenantVault",
]
