"""Where a key management service plugs in: the wrapper of tenant data keys.

faceward's hierarchy is master key -> tenant data key -> subject key -> sealed
values. Only the first link involves the master key, and only through two
calls, which :class:`faceward.security.crypto.Keyring` implements with a local
AES-256-GCM master key::

    wrap_tenant_key(tenant_id, key) -> wrapped bytes   (stored in tenants.wrapped_key)
    tenant_key(tenant_id, wrapped) -> key               (cached in process per tenant)

A KMS-backed wrapper implements the same two methods with the KMS's
encrypt/decrypt calls, passing the tenant id as the encryption context (AWS KMS
``EncryptionContext``, GCP KMS ``additional_authenticated_data``, Vault transit
``context``) so that a wrapped key moved to another tenant's row fails to
unwrap, as the local keyring's associated data does. The master key then never
leaves the KMS, every unwrap is logged by the KMS, and revoking the service's
KMS grant stops every tenant at once. Hand the wrapper to
:class:`~faceward.services.gallery.GalleryService` in place of the ``Keyring``
(``bootstrap.master_keyring`` is the one place to change), and to
:meth:`~faceward.services.accounts.AccountService.rotate_master` as the new
wrapper to move existing tenants onto it.

:class:`faceward.security.pkcs11.Pkcs11Keyring` is one, for any PKCS#11 token
(``FACEWARD_KMS=pkcs11``, decision 020).

Unwrapping must raise :class:`~faceward.security.errors.SealError` for a
wrapped key it cannot open (rotation relies on it to skip tenants already
moved).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class TenantKeyWrapper(Protocol):
    def wrap_tenant_key(self, tenant_id: str, key: bytes) -> bytes: ...

    def tenant_key(self, tenant_id: str, wrapped: bytes) -> bytes: ...


__all__ = ["TenantKeyWrapper"]
