"""``/readyz`` (readiness, no authentication, nothing about any tenant) and ``/metrics`` (Prometheus text,
behind ``FACEWARD_METRICS_TOKEN``; absent unless one is set; ``FACEWARD_METRICS_PORT`` serves it on a bind of
its own instead)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from faceward.api.deps import ServicesDep
from faceward.api.errors import error_response
from faceward.telemetry import check_readiness
from faceward.telemetry.metrics import CONTENT_TYPE, Telemetry

router = APIRouter(tags=["health"])


@router.get("/readyz", summary="Readiness: store reachable, schema at head, models loaded, indexes synced",
            responses={503: {"description": "Not ready; the body says which check failed"}})
def readyz(services: ServicesDep) -> JSONResponse:
    readiness = check_readiness(services.gallery)
    return JSONResponse(readiness.as_dict(), status_code=200 if readiness.ready else 503)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, services: ServicesDep) -> Response:
    token = services.settings.metrics_token
    if token is None:
        return error_response(404, "not_found", "no such route")
    given = request.headers.get("authorization", "")
    expected = f"Bearer {token.get_secret_value()}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return error_response(401, "unauthenticated", "the metrics token is required: Authorization: Bearer <token>",
                              {"www-authenticate": 'Bearer realm="faceward-metrics"'})
    telemetry: Telemetry = request.app.state.telemetry
    return Response(telemetry.exposition(), media_type=CONTENT_TYPE)
