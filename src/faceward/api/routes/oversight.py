"""Oversight: the tenant's usage (admin) and audit log (auditor, admin)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from faceward.api.deps import CallerDep, OperationsDep, ServicesDep
from faceward.api.routes.common import AUTHED, errors
from faceward.api.schemas import AuditEntryOut, AuditListOut, Moment, UsageOut

router = APIRouter(prefix="/v1", tags=["oversight"], responses=errors(*AUTHED))

FILTER_PATTERN = r"^[A-Za-z0-9_.:-]+$"


@router.get("/usage", response_model=UsageOut, summary="This tenant's keys, gallery size and per-key daily counts")
def usage(ops: OperationsDep, caller: CallerDep) -> UsageOut:
    return UsageOut.model_validate(ops.usage_summary(caller.principal, source=caller.source))


@router.get("/audit", response_model=AuditListOut, summary="The tenant's audit log, oldest first (or newest first)")
def audit(
    ops: OperationsDep,
    services: ServicesDep,
    caller: CallerDep,
    since: Annotated[Moment | None, Query(description="Entries at or after this moment.")] = None,
    until: Annotated[Moment | None, Query(description="Entries before this moment.")] = None,
    actor: Annotated[str | None, Query(max_length=64, pattern=FILTER_PATTERN, description="e.g. key:<key id>")] = None,
    action: Annotated[str | None, Query(max_length=64, pattern=FILTER_PATTERN, description="e.g. search, subject.erase")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    order: Annotated[Literal["oldest", "newest"], Query(description="oldest first (default) or newest first")] = "oldest",
) -> AuditListOut:
    entries = ops.audit_entries(
        caller.principal, since=since, until=until, actor=actor, action=action, limit=limit, offset=offset,
        newest_first=order == "newest", source=caller.source,
    )
    names = services.signin.actor_names(caller.principal.tenant_id, [e.actor for e in entries])
    return AuditListOut(entries=[AuditEntryOut.model_validate({**e.as_dict(), "actor_name": names.get(e.actor)})
                                 for e in entries], limit=limit, offset=offset)

