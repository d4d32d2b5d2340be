"""Observability: Prometheus metrics, readiness checks and one JSON log line per request.

Nothing here names a tenant or a subject: series carry route templates, status codes and
refusal codes; a tenant appears only by its opaque id, and only when an operator opts in
(``FACEWARD_METRICS_TENANT_SERIES``).
"""

from faceward.telemetry.logs import JsonFormatter, configure_logging
from faceward.telemetry.metrics import Telemetry
from faceward.telemetry.readiness import Check, Readiness, check_readiness

__all__ = ["Check", "JsonFormatter", "Readiness", "Telemetry", "check_readiness", "configure_logging"]
