"""Prometheus metrics of one API process, on a registry of its own (no module-level globals).

Counters of requests and refusals are fed by :class:`~faceward.api.observe.RequestTelemetryMiddleware`;
the state of the service (index sizes and sync lag, the analysis queue, model load times, audit
append failures) is read at scrape time by :class:`ServiceCollector`, so the domains keep plain
attributes and never import prometheus_client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from faceward.security.audit import AuditLog
    from faceward.services.gallery import GalleryService

log = logging.getLogger("faceward.telemetry")

# Request latency buckets, seconds: a refusal takes well under a millisecond, a search on CPU tens to
# hundreds of milliseconds, an enrollment of a large photo a few seconds.
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
WAIT_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Telemetry:
    """The metrics of one app. ``tenant_series`` adds a request counter by opaque tenant id."""

    def __init__(self, gallery: GalleryService | None = None, audit: AuditLog | None = None, *,
                 tenant_series: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.tenant_series = tenant_series
        self.requests = Counter(
            "faceward_http_requests", "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "faceward_http_request_duration_seconds", "Time to answer an HTTP request, by route template and method.",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.refusals = Counter(
            "faceward_refusals", "Requests refused, by the error code the client got (rate_limited, overloaded, ...).",
            ["code", "status"], registry=self.registry,
        )
        self.store_errors = Counter(
            "faceward_store_errors", "Requests that failed because the store was unavailable or failed.",
            ["code"], registry=self.registry,
        )
        self.analysis_wait = Histogram(
            "faceward_analysis_queue_wait_seconds", "Time an image waited for a free analysis worker.",
            buckets=WAIT_BUCKETS, registry=self.registry,
        )
        self.tenant_requests = (
            Counter("faceward_tenant_requests", "Authenticated requests by opaque tenant id (opt-in).",
                    ["tenant_id"], registry=self.registry)
            if tenant_series else None
        )
        if gallery is not None:
            self.registry.register(ServiceCollector(gallery, audit))
            if gallery.remote is not None:
                gallery.remote.on_wait = self.analysis_wait.observe

    def observe_request(self, route: str, method: str, status: int, seconds: float, code: str | None,
                        tenant_id: str | None) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)
        if code is not None and status >= 400:
            self.refusals.labels(code, str(status)).inc()
            if code.startswith("store_"):
                self.store_errors.labels(code).inc()
        if self.tenant_requests is not None and tenant_id is not None:
            self.tenant_requests.labels(tenant_id).inc()

    def exposition(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


class ServiceCollector(Collector):
    """Gauges read from the service at scrape time. A failure to read one is logged, never raised."""

    def __init__(self, gallery: GalleryService, audit: AuditLog | None) -> None:
        self.gallery = gallery
        self.audit = audit

    def describe(self) -> list[Metric]:
        return []  # names are known only at collect time; the registry then skips its duplicate check

    def collect(self) -> Iterator[Metric]:
        gallery = self.gallery
        backend = gallery.settings.index_backend.value
        size = GaugeMetricFamily("faceward_index_vectors", "Vectors held in this process's indexes.", labels=["backend"])
        lag = GaugeMetricFamily(
            "faceward_index_sync_lag_faces", "Faces in the store that this process's indexes have not taken in yet.",
            labels=["backend"],
        )
        tenants = GaugeMetricFamily("faceward_index_tenants_loaded", "Tenant indexes held in this process.",
                                    labels=["backend"])
        try:
            held, behind, count = gallery.indexes.status()
            size.add_metric([backend], held)
            lag.add_metric([backend], behind)
            tenants.add_metric([backend], count)
        except Exception as exc:  # a scrape must answer even when the store is down
            log.warning("index status unavailable for metrics: %s", exc.__class__.__name__)
        yield size
        yield lag
        yield tenants
        depth = GaugeMetricFamily("faceward_analysis_queue_depth", "Images waiting for or in face analysis.")
        depth.add_metric([], gallery.remote.pending if gallery.remote is not None else 0)
        yield depth
        load = GaugeMetricFamily("faceward_model_load_seconds", "Seconds the face models took to load and verify.",
                                 labels=["where"])
        if gallery.remote is not None:
            for number, seconds in enumerate(gallery.remote.load_seconds):
                load.add_metric([f"worker{number}"], seconds)
        engine = gallery.loaded_engine
        if engine is not None and engine.load_seconds is not None:
            load.add_metric(["api"], engine.load_seconds)
        yield load
        failures = CounterMetricFamily("faceward_audit_append_failures", "Audit entries that failed to append "
                                       "(the act they recorded failed with them).")
        failures.add_metric([], self.audit.failures if self.audit is not None else 0)
        yield failures


__all__ = ["CONTENT_TYPE", "ServiceCollector", "Telemetry"]
