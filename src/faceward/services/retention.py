"""The retention purge: subjects whose consent expired or who outlived their tenant's ``retention_days``.

:func:`purge_due` erases them through the same erasure as the API (ledger first, then the
store and the index), each audited first; :class:`RetentionScheduler` runs it periodically
inside the server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from faceward.errors import InvalidInput, NotFound
from faceward.services.gallery import GalleryService
from faceward.store import TenantRecord
from faceward.store.integrity import IntegrityStore
from faceward.store.profile import checked_retention

if TYPE_CHECKING:
    from faceward.security.audit import AuditLog

log = logging.getLogger(__name__)

PURGE_ACTOR = "system:retention"



@dataclass
class PurgeReport:
    at: datetime
    tenants: int
    purged: list[dict[str, str]]
    failed: list[dict[str, str]]

    def as_dict(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for item in self.purged:
            reasons[item["reason"]] = reasons.get(item["reason"], 0) + 1
        return {"at": self.at.isoformat(), "tenants": self.tenants, "purged": len(self.purged), "by_reason": reasons,
                "subjects": self.purged, "failed": self.failed}


def retention_days(tenant: TenantRecord) -> int | None:
    """Days the tenant keeps a subject after enrolling it (its profile's, checked); None: no limit."""
    return tenant.profile.retention_days


def set_retention(gallery: GalleryService, tenant_id: str, days: int | None) -> None:
    """Set (or clear, with None) how many days a tenant keeps a subject after enrolling it."""
    tenant = gallery.active_tenant(tenant_id)
    gallery.store.update_tenant(tenant_id, settings=tenant.profile.settings_with(retention_days=checked_retention(days)))


def purge_due(gallery: GalleryService, *, audit: AuditLog | None = None, now: datetime | None = None) -> PurgeReport:
    """Erase every subject whose consent has expired or who is older than its tenant's retention period.

    Uses ``gallery.clock`` unless ``now`` is given. Each erasure goes through
    :meth:`GalleryService.delete_subject` (ledger first, then the store and the
    index). With ``audit``, each is audited first, as the API does, and a
    subject whose entry cannot be written is left for the next run.
    Suspended tenants are purged too: retention does not pause with access.
    """
    moment = now or gallery.clock()
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    integrity = IntegrityStore(gallery.store)
    purged: list[dict[str, str]] = []
    failed: list[dict[str, str]] = []
    tenants = 0
    for tenant in gallery.store.list_tenants():
        if tenant.wrapped_key is None:
            continue
        tenants += 1
        try:
            days = retention_days(tenant)
        except InvalidInput as exc:
            failed.append({"tenant_id": tenant.id, "subject_id": "", "reason": exc.message})
            days = None
        cutoff = moment - timedelta(days=days) if days else None
        for subject_id, reason in integrity.subjects_due(tenant.id, now=moment, created_before=cutoff):
            try:
                if audit is not None:
                    audit.append(tenant.id, actor=PURGE_ACTOR, action="subject.purge",
                                 details={"subject_id": subject_id, "reason": reason}, source=None)
                gallery.delete_subject(tenant.id, subject_id)
            except NotFound:
                continue  # erased by someone else meanwhile
            except Exception as exc:  # one failure must not stop the purge of everyone else
                log.exception("retention purge of %s failed", subject_id)
                failed.append({"tenant_id": tenant.id, "subject_id": subject_id, "reason": type(exc).__name__})
                continue
            purged.append({"tenant_id": tenant.id, "subject_id": subject_id, "reason": reason})
    return PurgeReport(moment, tenants, purged, failed)


class RetentionScheduler:
    """Runs :func:`purge_due` every ``every`` seconds on a daemon thread (the server's lifespan starts and stops it).

    With several workers each may run it: an erasure is idempotent (a subject
    already erased is skipped), so the only cost is duplicate queries.
    """

    def __init__(
        self, gallery: GalleryService, *, every: float = 3600.0, audit: AuditLog | None = None,
        on_report: Callable[[PurgeReport], None] | None = None,
    ) -> None:
        if every <= 0:
            raise ValueError("every must be positive")
        self.gallery, self.every, self.audit, self.on_report = gallery, every, audit, on_report
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> PurgeReport:
        report = purge_due(self.gallery, audit=self.audit)
        if report.purged:
            log.info("retention purge erased %d subject(s)", len(report.purged))
        if self.on_report is not None:
            self.on_report(report)
        return report

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("retention purge failed; retrying in %.0f s", self.every)
            self._stop.wait(self.every)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="faceward-retention", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


__all__ = ["PURGE_ACTOR", "PurgeReport", "RetentionScheduler", "purge_due", "retention_days", "set_retention"]
