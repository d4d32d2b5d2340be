from __future__ import annotations

from fastapi import APIRouter

from faceward.api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, summary="Liveness: no authentication, no data")
def healthz() -> HealthOut:
    return HealthOut()
