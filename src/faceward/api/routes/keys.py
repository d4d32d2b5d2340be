"""API keys of the caller's tenant (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from faceward.api.deps import CallerDep, OperationsDep
from faceward.api.routes.common import AUTHED, errors, key_out
from faceward.api.schemas import KeyCreatedOut, KeyCreateIn, KeyListOut

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=errors(*AUTHED))


@router.post("", status_code=201, response_model=KeyCreatedOut, summary="Create an API key (the secret is shown once)")
def create_key(body: KeyCreateIn, ops: OperationsDep, caller: CallerDep) -> KeyCreatedOut:
    view, secret = ops.create_key(caller.principal, body.role, body.label, body.expires_at, source=caller.source)
    return KeyCreatedOut(key=key_out(view), secret=secret)


@router.get("", response_model=KeyListOut, summary="List the tenant's API keys (never their secrets)")
def list_keys(ops: OperationsDep, caller: CallerDep) -> KeyListOut:
    return KeyListOut(keys=[key_out(v) for v in ops.list_keys(caller.principal, source=caller.source)])


@router.delete("/{key_id}", status_code=204, response_class=Response, summary="Revoke an API key")
def revoke_key(key_id: Annotated[str, Path()], ops: OperationsDep, caller: CallerDep) -> Response:
    ops.revoke_key(caller.principal, key_id, source=caller.source)
    return Response(status_code=204)
