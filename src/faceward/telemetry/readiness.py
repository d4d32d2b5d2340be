"""``/readyz``: may this process take traffic? Store reachable, schema at head, models loaded, indexes synced.

``/healthz`` stays liveness (the process answers); a load balancer routes by readiness and
an orchestrator restarts by liveness, so a database outage makes every worker unready
without getting them killed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    from faceward.services.gallery import GalleryService

log = logging.getLogger("faceward.telemetry")


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, Check] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks.values())

    def as_dict(self) -> dict[str, Any]:
        return {"ready": self.ready, "checks": {k: {"ok": c.ok, "detail": c.detail} for k, c in self.checks.items()}}


def _store(gallery: GalleryService) -> tuple[Check, Check]:
    from faceward.store.migrate import head

    try:
        revision = gallery.store.schema_revision()
    except Exception as exc:  # any failure to reach it means "not ready", never a 500
        log.warning("readiness: store unreachable: %s", exc.__class__.__name__)
        return Check(False, "the store is unreachable"), Check(False, "unknown (store unreachable)")
    at_head = revision == head()
    return Check(True, "reachable"), Check(at_head, f"at {revision}" if at_head else f"at {revision}, head is {head()}")


def _models(gallery: GalleryService) -> Check:
    if gallery.remote is not None:
        if gallery.remote.ready():
            return Check(True, f"{gallery.remote.workers} worker(s) loaded and verified")
        return Check(False, "analysis workers are still loading their models")
    try:
        gallery.engine.load()  # loads (SHA-256 checked) on the first probe; free afterwards
    except Exception as exc:
        log.warning("readiness: models failed to load: %s", exc)
        return Check(False, "the face models failed to load")
    return Check(True, "loaded and verified")


def _indexes(gallery: GalleryService) -> Check:
    try:
        count = gallery.indexes.sync_loaded()
    except Exception as exc:
        log.warning("readiness: index sync failed: %s", exc.__class__.__name__)
        return Check(False, "the indexes could not catch up with the store")
    return Check(True, f"{count} tenant index(es) in step with the store")


def check_readiness(gallery: GalleryService) -> Readiness:
    store, migrations = _store(gallery)
    checks = {"store": store, "migrations": migrations, "models": _models(gallery)}
    checks["indexes"] = _indexes(gallery) if store.ok else Check(False, "unknown (store unreachable)")
    return Readiness(checks)


__all__ = ["Check", "Readiness", "check_readiness"]
