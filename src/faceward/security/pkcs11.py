"""The master key in an HSM: tenant keys wrapped and unwrapped inside a PKCS#11 token.

``FACEWARD_KMS=pkcs11`` with ``FACEWARD_PKCS11_MODULE`` (the vendor's library: SoftHSM2,
YubiHSM, Thales Luna, a cloud HSM's client), ``FACEWARD_PKCS11_TOKEN`` (the token's label) and
``FACEWARD_PKCS11_PIN_FILE`` (the user PIN, mode 0600). The master key is an AES-256 secret key
object generated inside the token, ``CKA_SENSITIVE`` and not ``CKA_EXTRACTABLE``: no call returns
its value, so no file, dump or backup can hold it. A tenant key is wrapped by AES-GCM *inside the
token* (``C_Encrypt`` with ``CKM_AES_GCM``), the tenant id and the master key's label as associated
data, exactly as :class:`~faceward.security.crypto.Keyring` does it in software::

    b"\\x11" | u8 label length | label | nonce (12) | ciphertext + tag

(0x11, apart from the software seals' 0x01 and 0x02, so neither format is ever mistaken for the other.)

Master keys are labelled ``<FACEWARD_PKCS11_KEY_LABEL>.<n>``; the highest ``n`` wraps, and any
key still in the token unwraps what it wrapped (the label travels with the wrapped bytes). That is
what makes rotation online: ``faceward keys rotate-master`` generates ``n + 1`` in the token and
re-wraps every tenant key under it while servers keep serving; they unwrap old and new alike and
pick up the new key for their next wrap. An old key stays in the token for the backups it wrapped
(``faceward backup --max-age`` bounds how long that is needed); ``faceward keys retire-master`` deletes it.

A session the token has lost (the HSM, its network client or the module restarted: :data:`LOST_SESSION`)
is opened again by logging in once more, and the operation retried once.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import stat
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from faceward.errors import ConfigError
from faceward.security.crypto import NONCE_BYTES, aad
from faceward.security.errors import MasterKeyError, SealError

if TYPE_CHECKING:
    from faceward.settings import Settings

log = logging.getLogger(__name__)

VERSION = b"\x11"  # an HSM-wrapped key; software seals start with 0x01 or 0x02
# What a token says when the session faceward holds is gone: the HSM (or its network link, or the module)
# restarted. The keyring then logs in again once and retries the operation.
LOST_SESSION = ("SessionHandleInvalid", "SessionClosed", "DeviceRemoved", "DeviceError", "TokenNotPresent",
                "TokenNotRecognised", "CryptokiNotInitialized", "UserNotLoggedIn")
DEFAULT_LABEL = "faceward-master"
_LABEL = struct.Struct("B")
_T = TypeVar("_T")


def lost_session(exc: BaseException) -> bool:
    return type(exc).__name__ in LOST_SESSION


class _Connection:
    """The one logged-in session every view of a keyring shares, and how to open it again."""

    def __init__(self, session: Any, reopen: Callable[[], Any] | None) -> None:
        self.session = session
        self.reopen = reopen
        self.reconnects = 0


def _reconnecting(method: Callable[..., _T]) -> Callable[..., _T]:
    """Run ``method``; if the token lost the session, log in again (once) and run it again."""

    @functools.wraps(method)
    def run(self: Pkcs11Keyring, *args: Any, **kwargs: Any) -> _T:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            if not lost_session(exc) or self._conn.reopen is None:
                raise
            self._reconnect(exc)
            return method(self, *args, **kwargs)

    return run


def read_pin(path: Path) -> str:
    """The user PIN from its file, which must be readable by its owner only."""
    try:
        mode = path.stat().st_mode
        pin = path.read_text().strip()
    except OSError as exc:
        raise MasterKeyError(f"cannot read the PKCS#11 PIN file {path}: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MasterKeyError(f"the PKCS#11 PIN file {path} is readable by others; chmod 600 it")
    if not pin:
        raise MasterKeyError(f"the PKCS#11 PIN file {path} is empty")
    return pin


class Pkcs11Keyring:
    """A :class:`~faceward.security.kms.TenantKeyWrapper` whose master keys never leave the token.

    One logged-in session per process, used under a lock (PKCS#11 sessions are not for
    concurrent operations); key handles are cached by label. ``pinned`` fixes the label that
    wraps (rotation writes under the new key while the old one still unwraps).
    """

    def __init__(self, session: Any, prefix: str = DEFAULT_LABEL, *, pinned: str | None = None,
                 lock: threading.Lock | None = None, handles: dict[str, Any] | None = None,
                 reopen: Callable[[], Any] | None = None, connection: _Connection | None = None) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", prefix):
            raise ConfigError("FACEWARD_PKCS11_KEY_LABEL: use 1 to 64 letters, digits, '-' or '_'")
        self._conn = connection or _Connection(session, reopen)
        self.prefix = prefix
        self._pinned = pinned
        self._lock = lock or threading.Lock()
        self._handles: dict[str, Any] = handles if handles is not None else {}

    @classmethod
    def open(cls, module: Path, token_label: str, pin: str, prefix: str = DEFAULT_LABEL) -> Pkcs11Keyring:
        import pkcs11
        import pkcs11.exceptions
        from pkcs11.exceptions import PKCS11Error

        try:
            lib = pkcs11.lib(str(module))
        except (OSError, RuntimeError, PKCS11Error) as exc:
            raise MasterKeyError(f"cannot load the PKCS#11 module {module}: {exc}") from None
        try:
            token = lib.get_token(token_label=token_label)
        except pkcs11.NoSuchToken:
            # A module lists the tokens it found when first initialised in this process; one made since
            # (a new partition, a hot-plugged HSM) appears after C_Finalize + C_Initialize.
            lib.reinitialize()
            token = cls._token(lib, token_label, module)
        except pkcs11.MultipleTokensReturned:
            raise MasterKeyError(f"more than one PKCS#11 token is labelled {token_label!r} in {module}") from None
        def log_in(token: Any) -> Any:
            try:
                return token.open(user_pin=pin, rw=True)
            except pkcs11.exceptions.UserAlreadyLoggedIn:
                # PKCS#11 logs in per process, not per session: a second keyring in this process shares it.
                return token.open(rw=True)
            except PKCS11Error as exc:
                raise MasterKeyError(f"cannot log in to PKCS#11 token {token_label!r}: {exc.__class__.__name__}") from None

        def reopen() -> Any:
            """After an HSM restart: the module initialised again if it must be, the token found, a new login."""
            try:
                return log_in(lib.get_token(token_label=token_label))
            except PKCS11Error:
                lib.reinitialize()
                return log_in(cls._token(lib, token_label, module))

        return cls(log_in(token), prefix, reopen=reopen)

    @property
    def _session(self) -> Any:
        return self._conn.session

    @property
    def reconnects(self) -> int:
        """How often this process logged in again after the token lost its session."""
        return self._conn.reconnects

    def _reconnect(self, cause: BaseException) -> None:
        assert self._conn.reopen is not None
        log.warning("the PKCS#11 token lost this process's session (%s): logging in again", type(cause).__name__)
        with self._lock:
            self._handles.clear()  # handles belong to the lost session
            try:
                self._conn.session = self._conn.reopen()
            except Exception as exc:
                raise MasterKeyError(f"the PKCS#11 token is unreachable after losing its session: {exc}") from None
            self._conn.reconnects += 1

    @staticmethod
    def _token(lib: Any, token_label: str, module: Path) -> Any:
        import pkcs11

        try:
            return lib.get_token(token_label=token_label)
        except (pkcs11.NoSuchToken, pkcs11.MultipleTokensReturned):
            raise MasterKeyError(f"no single PKCS#11 token labelled {token_label!r} in {module}") from None

    # -- the master keys in the token -----------------------------------------------------

    @_reconnecting
    def labels(self) -> list[str]:
        """The master keys in the token, oldest first (``<prefix>.<n>`` by ``n``)."""
        from pkcs11 import Attribute, ObjectClass

        pattern = re.compile(re.escape(self.prefix) + r"\.(\d+)")
        with self._lock:
            found = [str(o[Attribute.LABEL]) for o in self._session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})]
        numbered = [(int(m.group(1)), label) for label in found if (m := pattern.fullmatch(label))]
        return [label for _, label in sorted(numbered)]

    def current_label(self) -> str:
        if self._pinned is not None:
            return self._pinned
        labels = self.labels()
        if not labels:
            raise MasterKeyError(f"no master key {self.prefix}.<n> in the PKCS#11 token: run `faceward init`")
        return labels[-1]

    @_reconnecting
    def generate(self) -> str:
        """Create the next master key inside the token (AES-256, sensitive, never extractable); returns its label."""
        from pkcs11 import Attribute, KeyType

        labels = self.labels()
        number = int(labels[-1].rsplit(".", 1)[1]) + 1 if labels else 1
        label = f"{self.prefix}.{number}"
        template = {
            Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
            Attribute.ENCRYPT: True, Attribute.DECRYPT: True, Attribute.WRAP: False, Attribute.UNWRAP: False,
            Attribute.MODIFIABLE: False,
        }
        with self._lock:
            self._session.generate_key(KeyType.AES, 256, label=label, store=True, template=template)
        return label

    def ensure(self) -> tuple[str, bool]:
        """The current master key's label, creating the first one if the token has none; ``(label, created)``."""
        labels = self.labels()
        return (labels[-1], False) if labels else (self.generate(), True)

    @_reconnecting
    def destroy(self, label: str) -> None:
        """Delete a master key that is no longer the current one from the token (``faceward keys retire-master``).

        What it wrapped can never be unwrapped again: the caller checks that nothing live still is.
        """
        if label == self.current_label():
            raise MasterKeyError(f"{label} is the current master key; rotate to a new one before retiring it")
        key = self._key(label)
        with self._lock:
            key.destroy()
        self._handles.pop(label, None)

    def pinned(self, label: str) -> Pkcs11Keyring:
        """The same token and session, wrapping under ``label``."""
        return Pkcs11Keyring(None, self.prefix, pinned=label, lock=self._lock, handles=self._handles, connection=self._conn)

    @_reconnecting
    def describe(self, label: str) -> dict[str, bool]:
        """The key's protection attributes as the token reports them (tests and `faceward doctor` read this)."""
        from pkcs11 import Attribute

        key = self._key(label)
        with self._lock:
            return {"sensitive": bool(key[Attribute.SENSITIVE]), "extractable": bool(key[Attribute.EXTRACTABLE]),
                    "never_extractable": bool(key[Attribute.NEVER_EXTRACTABLE])}

    def _key(self, label: str) -> Any:
        from pkcs11 import KeyType, ObjectClass
        from pkcs11.exceptions import MultipleObjectsReturned, NoSuchKey

        key = self._handles.get(label)
        if key is None:
            try:
                with self._lock:
                    key = self._session.get_key(object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=label)
            except NoSuchKey:
                raise SealError(f"the master key {label!r} is not in the PKCS#11 token") from None
            except MultipleObjectsReturned:
                raise MasterKeyError(f"the PKCS#11 token holds more than one key labelled {label!r}") from None
            self._handles[label] = key
        return key

    # -- TenantKeyWrapper ------------------------------------------------------------------

    @_reconnecting
    def wrap_tenant_key(self, tenant_id: str, key: bytes) -> bytes:
        from pkcs11 import GCMParams, Mechanism

        label = self.current_label()
        master = self._key(label)
        nonce = os.urandom(NONCE_BYTES)
        with self._lock:
            sealed = master.encrypt(key, mechanism=Mechanism.AES_GCM,
                                    mechanism_param=GCMParams(nonce, aad(tenant_id, "tenant-key", label), 128))
        encoded = label.encode()
        return VERSION + _LABEL.pack(len(encoded)) + encoded + nonce + bytes(sealed)

    @_reconnecting
    def tenant_key(self, tenant_id: str, wrapped: bytes) -> bytes:
        from pkcs11 import GCMParams, Mechanism
        from pkcs11.exceptions import PKCS11Error

        label, nonce, sealed = self.parse(wrapped)
        if self._pinned is not None and label != self._pinned:
            raise SealError(f"wrapped under {label!r}, not {self._pinned!r}")
        master = self._key(label)
        try:
            with self._lock:
                return bytes(master.decrypt(sealed, mechanism=Mechanism.AES_GCM,
                                            mechanism_param=GCMParams(nonce, aad(tenant_id, "tenant-key", label), 128)))
        except PKCS11Error as exc:
            if lost_session(exc):
                raise
            raise SealError("the wrapped tenant key failed authentication in the token") from None

    @staticmethod
    def parse(wrapped: bytes) -> tuple[str, bytes, bytes]:
        """``(label, nonce, ciphertext + tag)`` of a key this class wrapped; :class:`SealError` otherwise."""
        if len(wrapped) < 2 or wrapped[:1] != VERSION:
            raise SealError("not a key wrapped by a PKCS#11 master key")
        length = wrapped[1]
        start = 2 + length
        if len(wrapped) < start + NONCE_BYTES + 16 + 1:
            raise SealError("the wrapped tenant key is malformed")
        return wrapped[2:start].decode(errors="replace"), wrapped[start : start + NONCE_BYTES], wrapped[start + NONCE_BYTES :]


def open_keyring(settings: Settings) -> Pkcs11Keyring:
    """The token named by the settings, logged in; :class:`ConfigError` names a missing variable."""
    missing = [name for name, value in (
        ("FACEWARD_PKCS11_MODULE", settings.pkcs11_module), ("FACEWARD_PKCS11_TOKEN", settings.pkcs11_token),
        ("FACEWARD_PKCS11_PIN_FILE", settings.pkcs11_pin_file),
    ) if value is None]
    if missing:
        raise ConfigError(f"FACEWARD_KMS=pkcs11 needs {', '.join(missing)}")
    assert settings.pkcs11_module is not None and settings.pkcs11_token is not None and settings.pkcs11_pin_file is not None
    return Pkcs11Keyring.open(settings.pkcs11_module, settings.pkcs11_token, read_pin(settings.pkcs11_pin_file),
                              settings.pkcs11_key_label)


__all__ = ["DEFAULT_LABEL", "Pkcs11Keyring", "open_keyring", "read_pin"]
