"""The one service graph: ``build_services(settings)``, used by ``faceward serve`` and every CLI command.

settings -> master key -> store -> vault and gallery use cases -> accounts, audit,
usage -> one :class:`~faceward.services.gate.Gate` -> :class:`~faceward.services.operations.Operations`
and the console's :class:`~faceward.services.console.ConsoleActs` (composed over that one gate). No module-level singletons; building fails, before anything
runs, when there is no master key or it is a placeholder.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from faceward.bootstrap import master_keyring
from faceward.security.audit import AuditLog
from faceward.security.operator_log import OperatorLog
from faceward.security.failure_windows import shared_windows
from faceward.security.shared_buckets import bucket_maker
from faceward.security.throttle import FailureDigest, FailureThrottle
from faceward.services.accounts import AccountService
from faceward.services.gallery import GalleryService
from faceward.services.console import ConsoleActs
from faceward.services.gate import Gate
from faceward.services.ids import utcnow
from faceward.services.operations import Limits, Operations
from faceward.services.signin import SignInService
from faceward.services.usage import UsageService
from faceward.settings import Settings
from faceward.store import SqlStore
from faceward.store.ledger import LedgerError
from faceward.vision import EngineOptions, FaceEngine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """Everything an act may need, built once per process by :func:`build_services`."""

    settings: Settings
    gallery: GalleryService
    accounts: AccountService
    audit: AuditLog
    usage: UsageService
    operations: Operations
    console: ConsoleActs
    operator_log: OperatorLog
    signin: SignInService
    """Console sign-in through the tenant's OpenID Connect provider (decision 021)."""


def settings_limits(settings: Settings) -> Limits:
    """Per-key limits from ``FACEWARD_RATE_PER_MINUTE``, ``FACEWARD_RATE_BURST``, ``FACEWARD_SEARCHES_PER_DAY``."""
    return Limits(settings.rate_per_minute, settings.rate_burst, settings.searches_per_day)


def build_services(
    settings: Settings,
    *,
    engine: FaceEngine | None = None,
    limits: Limits | None = None,
    analysis_workers: bool = True,
    create_schema: bool = True,
    command: str = "serve",
) -> Services:
    """The service graph for ``settings``. Raises ``MasterKeyError`` without a usable master key.

    ``analysis_workers`` lets the server analyse uploads in worker processes
    (``FACEWARD_ANALYSIS_WORKERS``); a one-shot CLI command analyses in process.
    ``command`` is what the operator audit log records for acts on tenants.
    """
    keyring = master_keyring(settings)
    store = SqlStore.open(settings.db_url, create=create_schema)
    gallery = GalleryService(store, keyring, settings, engine=engine)
    if engine is None and analysis_workers and settings.analysis_workers:
        from faceward.vision.remote import RemoteEngine

        gallery.remote = RemoteEngine(
            EngineOptions.from_settings(settings), workers=settings.analysis_workers,
            max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels,
            per_tenant=settings.analysis_per_tenant or None, queue_per_tenant=settings.analysis_queue_per_tenant,
        )
    audit = AuditLog(store, gallery.vault.tenant_key, clock=gallery.clock)
    usage = UsageService(store, gallery.vault)
    operator_log = OperatorLog(settings.home / OperatorLog.FILE_NAME, keyring=keyring, command=command)
    buckets = bucket_maker(settings.rate_limit_redis)  # shared between replicas when Redis is configured
    accounts = AccountService(
        gallery, audit, throttle=FailureThrottle(settings.auth_failures_per_minute, buckets=buckets),
        operator_log=operator_log, failures=FailureDigest(windows=shared_windows(buckets, gallery.vault.tenant_key)),
    )
    limits = limits or settings_limits(settings)
    gate = Gate(audit, usage, limits, clock=utcnow, buckets=buckets)  # one gate: API, CLI and console acts
    console = ConsoleActs(gallery, accounts, audit, gate)
    operations = Operations(gallery, accounts, audit, usage, limits=limits, gate=gate, reviewing=console)
    gallery.chip_sink = console.thumbnails.keep  # enrolled faces' thumbnails, for reviewers (#6)
    console.reviews.seal_pending()  # steps revision 0006 left in clear: a migration holds no key
    try:
        gallery.ledger.convert()  # erasure-ledger lines written with ids in clear become keyed hashes, once
    except LedgerError as exc:  # a broken ledger must not stop the service: erasures and the doctor report it
        log.warning("the erasure ledger was not converted: %s", exc.message)
    signin = SignInService(gallery, audit, console.sessions, gate)
    return Services(settings, gallery, accounts, audit, usage, operations, console, operator_log, signin)


__all__ = ["Services", "build_services", "settings_limits"]
