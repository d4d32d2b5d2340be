"""Tenants' accounts: creating and suspending tenants, minting and revoking API keys, authenticating requests.

Every change to keys is audited in the same transaction as the change itself.
Authentication failures are audited when the key id names a known tenant (an
unknown key id has no tenant to log under), as a digest: the first failure of a
key id in a window at once, the rest of the window as one entry with a count; past
a budget of failures per key id and per client address they are answered 429
(:mod:`faceward.security.throttle`, decision 014). Tenants are created, suspended and
deleted only by the operator (the CLI); no API key can do it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from faceward.errors import Conflict, InvalidInput, NotFound
from faceward.security.apikeys import Token, hash_token, matches, new_token, parse_token
from faceward.security.errors import MasterKeyError, RateLimited, Unauthenticated
from faceward.security.kms import TenantKeyWrapper
from faceward.security.permissions import Role
from faceward.security.policy import Principal
from faceward.security.throttle import FailureDigest, FailureThrottle
from faceward.security.audit import AuditLog
from faceward.security.operator_log import OperatorLog
from faceward.security.pkcs11 import VERSION as PKCS11_WRAP
from faceward.security.pkcs11 import Pkcs11Keyring
from faceward.services.gallery import GalleryService
from faceward.security.ratelimit import retry_after_seconds
from faceward.store.accounts import AccountStore, utc
from faceward.store.profile import TRANSFORM_GENERATION
from faceward.store.records import ApiKeyRecord, TenantRecord

log = logging.getLogger("faceward.accounts")

OPERATOR = "operator"
TOUCH_INTERVAL = timedelta(minutes=1)  # last_used_at is written at most this often per key
MAX_LABEL = 100
_DUMMY = Token("0" * 16, "0" * 43)


@dataclass(frozen=True)
class KeyView:
    """An API key as its tenant's admin sees it: never the secret, nor its hash."""

    id: str
    role: Role
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["role"] = self.role.value
        return data


class AccountService:
    def __init__(
        self, gallery: GalleryService, audit: AuditLog, *, throttle: FailureThrottle | None = None,
        operator_log: OperatorLog | None = None, failures: FailureDigest | None = None,
    ) -> None:
        self.gallery = gallery
        self.audit = audit
        self.operator_log = operator_log  # acts on tenants themselves, kept where a tenant's deletion cannot reach
        self.store = gallery.store
        self._repo = AccountStore(gallery.store)
        self.throttle = throttle or FailureThrottle()
        self.failures = failures or FailureDigest()

    def _now(self) -> datetime:
        return utc(self.gallery.clock())

    def _operator_act(self, action: str, tenant_id: str | None, details: dict[str, Any] | None = None) -> None:
        if self.operator_log is not None:
            self.operator_log.append(action, tenant_id=tenant_id, details=details, at=self._now())

    # -- tenants (operator only) ----------------------------------------------------

    def create_tenant(self, name: str) -> tuple[str, str]:
        """A new tenant and its first admin key; the key's secret is returned here once and never again."""
        tenant_id = self.gallery.create_tenant(name)
        try:
            self.audit.append(tenant_id, actor=OPERATOR, action="tenant.create", details={}, source=None)
            _, token = self.create_key(tenant_id, Role.ADMIN, "initial admin key", None, actor=OPERATOR, source=None)
        except BaseException:
            self.store.delete_tenant(tenant_id)
            raise
        self._operator_act("tenant.create", tenant_id)
        return tenant_id, token

    def list_tenants(self) -> list[dict[str, Any]]:
        """Operator view of every tenant: names opened with the master key, counts per tenant."""
        rows = []
        for record in self.store.list_tenants():
            shredded = record.wrapped_key is None
            rows.append({
                "id": record.id,
                "name": self.gallery.tenant_name(record),
                "status": record.status,
                "created_at": utc(record.created_at),
                "keys": 0 if shredded else self._repo.count_keys(record.id),
                "subjects": 0 if shredded else self.store.count_subjects(record.id),
            })
        return rows

    def _live_tenant(self, tenant_id: str) -> None:
        if self.store.get_tenant(tenant_id).wrapped_key is None:
            raise NotFound("no such tenant")

    def suspend_tenant(self, tenant_id: str, suspended: bool = True) -> None:
        """Suspend (every key stops authenticating at once) or reinstate a tenant."""
        self._live_tenant(tenant_id)
        status = "suspended" if suspended else "active"
        with self.store.transaction(tenant_id) as conn:
            self.store.set_tenant_status(tenant_id, status, conn=conn)
            self.audit.append(
                tenant_id, actor=OPERATOR, action="tenant.suspend" if suspended else "tenant.resume",
                details={}, source=None, conn=conn,
            )
        self._operator_act("tenant.suspend" if suspended else "tenant.resume", tenant_id)

    def renew_transform(self, tenant_id: str) -> int:
        """A new generation of the tenant's protected-template transform (decision 016, 034); returns it.
        Rows copied from Milvus before it match no probe after it; in-process indexes hold no protected rows."""
        with self.store.unit_of_work(tenant_id):
            self._live_tenant(tenant_id)  # the unit keeps the row: read once
            tenant = self.store.get_tenant(tenant_id)
            old = tenant.profile.transform_generation
            generation = old + 1
            self.store.update_tenant(tenant_id, settings=tenant.profile.settings_with(**{TRANSFORM_GENERATION: generation}))
            self.audit.append(tenant_id, actor=OPERATOR, action="gallery.transform.renew",
                              details={"generation": generation}, source=None)
        # The new generation's rows go to a collection of their own, filled from the store on the next search
        # (here or on any replica); the old collection, which a thief may have copied, is dropped.
        self.gallery.indexes.drop_tenant(tenant_id)
        self.gallery.purge_engine(tenant_id, old)
        self._operator_act("gallery.transform.renew", tenant_id, {"generation": generation})
        return generation

    def delete_tenant(self, tenant_id: str) -> None:
        """Crypto-shred: destroy the wrapped tenant key (committed first), then delete every row.

        The tenant is first appended to the erasure ledger (when the gallery keeps
        one), so a restored backup is shredded again (decision 007).

        Once the first step commits, everything sealed under the tenant key, in
        this database and in every backup of it, is unreadable. Should the
        second step fail, the tenant lists as shredded and deleting it again
        finishes the job.
        """
        self.store.get_tenant(tenant_id)  # NotFound for an unknown id
        self._operator_act("tenant.delete", tenant_id)  # first: the tenant's own chain goes with its key
        ledger = getattr(self.gallery, "ledger", None)  # decision 007: the erasure outlives restored backups
        if ledger is not None:
            ledger.record_tenant(tenant_id, at=self._now())
        self.store.update_tenant(tenant_id, wrapped_key=None, status="deleted")
        self.gallery.vault.forget()
        self.gallery.indexes.erase_tenant(tenant_id)
        self.store.delete_tenant(tenant_id)
        log.info("tenant %s crypto-shredded and deleted by the operator", tenant_id)

    def rotate_master(self, new: TenantKeyWrapper) -> dict[str, int]:
        """Re-wrap every tenant's data key under ``new`` (a new master key or a KMS); returns counts.

        The tenant keys themselves do not change, so no sealed value is touched
        and API keys stay valid. Each tenant is re-wrapped in its own
        transaction, compare-and-set on the old wrapped bytes; a tenant whose
        key already opens under ``new`` is skipped, so an interrupted rotation
        is finished by running it again. With a key file, stop the service
        first and start it with the new master key afterwards.

        It is the host's act, not the tenant's: each re-wrap (``master_key.rewrap``,
        with the tenant id) and the rotation (``master_key.rotate``, with the
        counts) go to the operator chain, and no tenant's chain records it.
        """
        vault = self.gallery.vault
        counts = {"rotated": 0, "already": 0, "shredded": 0}
        for tenant_id, _, _ in self.store.tenant_directory():
            record = self.store.get_tenant(tenant_id)
            if record.wrapped_key is None:
                counts["shredded"] += 1
                continue
            rewrapped = vault.rewrap_tenant_key(tenant_id, record.wrapped_key, new)
            if rewrapped is None:
                counts["already"] += 1
                continue
            if not self.store.replace_wrapped_key(tenant_id, record.wrapped_key, rewrapped):
                raise Conflict(f"tenant {tenant_id} changed during the rotation; run it again")
            self._operator_act("master_key.rewrap", tenant_id)
            counts["rotated"] += 1
        if self.operator_log is not None:  # its MAC key is wrapped by the master key too
            self.operator_log.rewrap_key(new)
        self.gallery.ledger.rewrap_key(new)  # so is the key of the erasure ledger's hashes
        vault.use_keyring(new)
        self._operator_act("master_key.rotate", None, counts)
        return counts

    def retire_master(self, keyring: Pkcs11Keyring, label: str) -> dict[str, Any]:
        """Delete the old master key ``label`` from the token once no tenant key (nor the operator log's key) is
        wrapped under it; audited in the operator chain. Backups wrapped under it can no longer be restored:
        that is the point (decision 020), and why the CLI asks first."""
        if label not in keyring.labels():
            raise NotFound(f"no master key {label!r} in the token")
        if label == keyring.current_label():
            raise MasterKeyError(f"{label} is the current master key; rotate to a new one before retiring it")
        under = []
        for tenant_id, _, _ in self.store.tenant_directory():
            wrapped = self.store.get_tenant(tenant_id).wrapped_key
            if wrapped is not None and wrapped[:1] == PKCS11_WRAP and Pkcs11Keyring.parse(wrapped)[0] == label:
                under.append(tenant_id)
        log_key = self.operator_log.key_path if self.operator_log is not None else None
        if log_key is not None and log_key.exists():
            wrapped = log_key.read_bytes()
            if wrapped[:1] == PKCS11_WRAP and Pkcs11Keyring.parse(wrapped)[0] == label:
                under.append("the operator log's key")
        if under:
            raise Conflict(f"{len(under)} key(s) are still wrapped under {label} ({', '.join(under[:3])}): "
                           "run `faceward keys rotate-master` first")
        keyring.destroy(label)
        details = {"label": label, "remaining": keyring.labels()}
        self._operator_act("master_key.retire", None, details)
        return details

    # -- API keys -------------------------------------------------------------------

    def _view(self, record: ApiKeyRecord) -> KeyView:
        return KeyView(
            id=record.id,
            role=self.gallery.vault.open_key_role(record),
            label=self.gallery.vault.open_key_label(record),
            created_at=record.created_at,
            expires_at=record.expires_at,
            revoked_at=record.revoked_at,
            last_used_at=record.last_used_at,
        )

    def create_key(
        self,
        tenant_id: str,
        role: Role,
        label: str,
        expires_at: datetime | None,
        *,
        actor: str,
        source: str | None,
    ) -> tuple[KeyView, str]:
        """Mint a key; returns its view and the token ``fw_<id>_<secret>``, shown once."""
        self.gallery.active_tenant(tenant_id)
        try:
            role = Role(role)
        except ValueError:
            raise InvalidInput(f"role must be one of {', '.join(r.value for r in Role)}") from None
        label = (label or "").strip()
        if len(label) > MAX_LABEL:
            raise InvalidInput(f"a key label has at most {MAX_LABEL} characters")
        now = self._now()
        if expires_at is not None:
            expires_at = utc(expires_at)
            if expires_at <= now:
                raise InvalidInput("expires_at must be in the future")
        token = new_token()
        vault = self.gallery.vault
        record = ApiKeyRecord(
            id=token.key_id,
            tenant_id=tenant_id,
            secret_hash=hash_token(vault.api_key_pepper(tenant_id), token),
            role_sealed=vault.seal_key_role(tenant_id, token.key_id, role),
            label_sealed=vault.seal_key_label(tenant_id, token.key_id, label),
            created_at=now,
            expires_at=expires_at,
        )
        with self.store.transaction(tenant_id) as conn:
            self._repo.add_key(record, conn=conn)
            self.audit.append(
                tenant_id, actor=actor, action="key.create",
                details={"key_id": record.id, "role": role.value, "expires_at": expires_at},
                source=source, conn=conn,
            )
        return self._view(record), str(token)

    def list_keys(self, tenant_id: str) -> list[KeyView]:
        return [self._view(r) for r in self._repo.list_keys(tenant_id)]

    def get_key(self, tenant_id: str, key_id: str) -> KeyView:
        return self._view(self._repo.get_key(tenant_id, key_id))

    def revoke_key(self, tenant_id: str, key_id: str, *, actor: str, source: str | None) -> None:
        """Revoke at once; revoking a revoked key changes nothing. :class:`NotFound` for another tenant's key.

        :class:`Conflict` for the tenant's last active admin key: revoking it would lock the tenant
        out of its own keys (a new admin key first, or ``faceward tenant admin-key``).
        """
        self.gallery.vault.warm(tenant_id)  # unwrapped before the transaction, which must not open another
        now = self._now()
        with self.store.transaction(tenant_id) as conn:
            keys = self._repo.list_keys(tenant_id, conn=conn, lock=True)  # concurrent revokes wait here
            admins = [v.id for v in (self._view(k) for k in keys) if v.role is Role.ADMIN and v.active(now)]
            if admins == [key_id]:
                raise Conflict(
                    "this is the tenant's last active admin key; create another admin key before revoking it",
                    code="last_admin_key",
                )
            if self._repo.revoke_key(tenant_id, key_id, at=self._now(), conn=conn):
                self.audit.append(
                    tenant_id, actor=actor, action="key.revoke", details={"key_id": key_id}, source=source, conn=conn
                )

    # -- authentication -------------------------------------------------------------

    def authenticate(self, token: str | None, *, source: str | None, address: str | None = None) -> Principal:
        """The principal behind ``token``, or :class:`Unauthenticated` (one message for every cause).

        ``address`` (by default the host part of ``source``, ``api:<host>``) is the client whose
        failures are throttled: past its budget, or its key id's, a failure is :class:`RateLimited`.
        A correct key is never throttled.
        """
        if address is None and source:
            address = source.partition(":")[2] or source
        if not token:
            raise Unauthenticated("an API key is required", reason="missing")
        parsed = parse_token(token)
        if parsed is None:
            matches(None, _DUMMY, None)
            self._refuse(None, None, "malformed", source, address)
        pepper_key: bytes | None = None
        status = None
        tenant: TenantRecord | None = None
        with self.store.unit_of_work():  # the key and its tenant, read in one transaction
            record = self._repo.key_for_authentication(parsed.key_id)
            if record is not None:
                try:
                    tenant = self.store.get_tenant(record.tenant_id)
                    if tenant.wrapped_key is not None:
                        pepper_key = self.gallery.vault.api_key_pepper(record.tenant_id)
                        status = tenant.status
                except NotFound:
                    pass
        ok = matches(pepper_key, parsed, record.secret_hash if record else None)
        if record is None or pepper_key is None:
            self._refuse(None, parsed.key_id, "unknown key", source, address)
        now = self._now()
        reason = None
        if not ok:
            reason = "wrong secret"
        elif record.revoked_at is not None:
            reason = "revoked"
        elif record.expires_at is not None and record.expires_at <= now:
            reason = "expired"
        elif status != "active":
            reason = f"tenant {status}"
        if reason is not None:
            self._refuse(record.tenant_id, record.id, reason, source, address)
        role = self.gallery.vault.open_key_role(record)
        if record.last_used_at is None or now - record.last_used_at >= TOUCH_INTERVAL:
            self._repo.touch_key(record.tenant_id, record.id, at=now)
        return Principal(record.tenant_id, record.id, role, tenant=tenant)

    def _refuse(self, tenant_id: str | None, key_id: str | None, reason: str, source: str | None,
                address: str | None) -> NoReturn:
        """Count, audit (as a digest) and refuse a failed authentication: 401, or 429 past the throttle."""
        wait = self.throttle.failed(key_id, address)
        if tenant_id is not None and key_id is not None:
            first = self.failures.note(tenant_id, key_id, reason=reason, source=source, throttled=wait > 0,
                                       now=self._now())
            if first:
                self.audit.append(
                    tenant_id, actor=f"key:{key_id}", action="auth.failure",
                    details={"key_id": key_id, "reason": reason, "count": 1}, source=source,
                )
        self.flush_failures()
        if wait > 0:
            raise RateLimited("too many failed authentications; retry later", retry_after=retry_after_seconds(wait))
        raise Unauthenticated(reason=reason)

    def flush_failures(self, *, everything: bool = False) -> int:
        """Record the failure windows that have closed (all, with ``everything``: at shutdown); returns how many."""
        summaries = self.failures.due(self._now(), everything=everything)
        for summary in summaries:
            try:
                self.audit.append(summary.tenant_id, actor=f"key:{summary.key_id}", action="auth.failure",
                                  details=summary.details, source=None)
            except NotFound:
                pass  # the tenant was deleted meanwhile: nothing to record under
            except Exception:
                log.exception("could not record %d failed authentications of key %s",
                              summary.details["count"], summary.key_id)
        return len(summaries)


__all__ = ["KeyView", "AccountService", "OPERATOR", "TOUCH_INTERVAL"]
