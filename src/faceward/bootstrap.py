"""Wiring: settings -> master key -> store -> services. Used by the CLI and the app factory alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from faceward.security.crypto import Keyring, load_master_key, write_master_key_file
from faceward.security.keyfile import FileKeyring
from faceward.security.kms import TenantKeyWrapper
from faceward.services.gallery import GalleryService
from faceward.settings import Kms, Settings
from faceward.store import SqlStore

if TYPE_CHECKING:
    from faceward.services.accounts import AccountService


def key_file(settings: Settings) -> Path:
    return settings.master_key_file or settings.home / "master.key"


@dataclass(frozen=True)
class InitResult:
    home: Path
    key_file: Path
    key_created: bool
    database_url: str
    hsm_key: str | None = None  # FACEWARD_KMS=pkcs11: "token <label>, key <label>"; no key file then


def init_home(settings: Settings) -> InitResult:
    """Create the embedded home: the folder (0700), a master key file (0600) if none is configured, the schema."""
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.home.chmod(0o700)
    path = key_file(settings)
    created = False
    hsm_key = None
    if settings.kms is Kms.PKCS11:
        from faceward.security.pkcs11 import open_keyring

        label, created = open_keyring(settings).ensure()  # generated inside the token, never on disk
        hsm_key = f"token {settings.pkcs11_token}, key {label}"
    elif settings.master_key is None and not path.exists():
        write_master_key_file(path)
        created = True
    store = SqlStore.open(settings.db_url)
    store.close()
    return InitResult(settings.home, path, created, settings.db_url, hsm_key)


def master_keyring(settings: Settings) -> TenantKeyWrapper:
    """The configured master key: a PKCS#11 token (``FACEWARD_KMS=pkcs11``) or the key file / environment.

    Raises MasterKeyError when there is none, it is a placeholder, or the token holds no master key yet.
    """
    if settings.kms is Kms.PKCS11:
        from faceward.security.pkcs11 import open_keyring

        keyring = open_keyring(settings)
        keyring.current_label()  # no master key in the token: refuse now, not on the first request
        return keyring
    return file_keyring(settings)


def file_keyring(settings: Settings) -> Keyring | FileKeyring:
    """The keyring from the master key in the environment, or the key file (followed through an online
    rotation: :mod:`faceward.security.keyfile`)."""
    env_value = settings.master_key.get_secret_value() if settings.master_key else None
    path = key_file(settings)
    key = load_master_key(env_value, path if (settings.master_key_file or path.exists()) else None)
    return Keyring(key) if env_value else FileKeyring(key, path)


def open_gallery(settings: Settings, *, create_schema: bool = True) -> GalleryService:
    keyring = master_keyring(settings)
    store = SqlStore.open(settings.db_url, create=create_schema)
    return GalleryService(store, keyring, settings)


def open_accounts(settings: Settings, *, create_schema: bool = True) -> AccountService:
    """The gallery with its accounts and audit log wired on top (``accounts.gallery``, ``accounts.audit``)."""
    from faceward.services.accounts import AccountService
    from faceward.security.audit import AuditLog

    gallery = open_gallery(settings, create_schema=create_schema)
    return AccountService(gallery, AuditLog(gallery.store, gallery.vault.tenant_key, clock=gallery.clock))
