"""Operator commands: tenants and the audit log (the master key: :mod:`faceward.cli.keys`). They run on the
server, not through the API.

Tenant names are opened with the master key here and nowhere else; no API key,
whatever its role, can list tenants or read another tenant's audit log.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Annotated, Any, Optional

import typer

from faceward.cli.acting import open_services
from faceward.cli.common import JsonOpt, command_group, emit_json, fail, friendly, out, settings, shown, table
from faceward.errors import InvalidInput
from faceward.services.accounts import AccountService
from faceward.security.audit import AuditEntry, AuditReport
from faceward.text import rfc3339

tenant_app = command_group(help="Create, list, suspend and delete tenants (operator only).")
audit_app = command_group(help="Verify the audit chains; read who did what, when, from where.")

TenantArg = typer.Argument(help="Tenant id (see `faceward tenant list`).")
TenantFilter = typer.Option("--tenant", help="One tenant id (default: every tenant).")


def accounts(command: str) -> AccountService:
    """The services over the configured database, for the operator's ``command`` (the operator log records it).
    The embedded default home is created on first use; a configured database (FACEWARD_DATABASE_URL) must
    come with its configured master key."""
    return open_services(settings(), command).accounts


def parse_moment(value: str | None, *, name: str) -> datetime | None:
    """ISO 8601 date or date-time; a date means its midnight, a time without zone means UTC."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=timezone.utc)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 date or date-time, e.g. 2026-11-01 or 2026-11-01T09:30Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# -- tenants ------------------------------------------------------------------------


@tenant_app.command("create")
def tenant_create(
    name: Annotated[str, typer.Argument(help="The organisation's name (stored sealed).")],
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Create a tenant and its first admin API key. The key is printed once and never again."""
    _tenant_create(name, as_json)


@friendly
def _tenant_create(name: str, as_json: bool) -> None:
    tenant_id, token = accounts("tenant create").create_tenant(name)
    if as_json:
        emit_json({"tenant_id": tenant_id, "admin_key": token})
        return
    out.print(f"tenant: {tenant_id}", markup=False)
    out.print(f"admin key: {token}", markup=False)
    out.print("the admin key is shown this once: hand it to the tenant's administrator over a safe channel", markup=False)


@tenant_app.command("list")
def tenant_list(as_json: Annotated[bool, JsonOpt] = False) -> None:
    """Every tenant: id, name, status, keys and subjects."""
    _tenant_list(as_json)


@friendly
def _tenant_list(as_json: bool) -> None:
    rows = accounts("tenant list").list_tenants()
    if as_json:
        emit_json({"tenants": rows})
        return
    out.print(table(
        ["id", "name", "status", "created", "keys", "subjects"],
        [[row["id"], row["name"], row["status"], row["created_at"].date().isoformat(), str(row["keys"]), str(row["subjects"])]
         for row in rows],
        whole={"id", "status", "created", "keys", "subjects"},
    ))


@tenant_app.command("suspend")
def tenant_suspend(tenant: Annotated[str, TenantArg], as_json: Annotated[bool, JsonOpt] = False) -> None:
    """Suspend a tenant: every one of its keys stops working at once; nothing is deleted."""
    _tenant_status(tenant, True, as_json)


@tenant_app.command("resume")
def tenant_resume(tenant: Annotated[str, TenantArg], as_json: Annotated[bool, JsonOpt] = False) -> None:
    """Lift a suspension."""
    _tenant_status(tenant, False, as_json)


@friendly
def _tenant_status(tenant: str, suspended: bool, as_json: bool) -> None:
    accounts("tenant suspend" if suspended else "tenant resume").suspend_tenant(tenant, suspended)
    status = "suspended" if suspended else "active"
    if as_json:
        emit_json({"tenant_id": tenant, "status": status})
    else:
        out.print(f"{tenant}: {status}", markup=False)


@tenant_app.command("renew-transform")
def tenant_renew_transform(tenant: Annotated[str, TenantArg], as_json: Annotated[bool, JsonOpt] = False) -> None:
    """Renew a tenant's protected-template transform: rows copied from Milvus so far stop matching anything.

    The tenant's vectors go to a new collection, rotated by a new secret matrix, rebuilt from the store on
    the next search (by any replica); the old collection is dropped. Run it after a suspected leak of the
    vector engine. With an in-process index it only records the new generation."""
    _tenant_renew_transform(tenant, as_json)


@friendly
def _tenant_renew_transform(tenant: str, as_json: bool) -> None:
    generation = accounts("tenant renew-transform").renew_transform(tenant)
    if as_json:
        emit_json({"tenant_id": tenant, "transform_generation": generation})
    else:
        out.print(f"{tenant}: template transform renewed (generation {generation})", markup=False)


@tenant_app.command("delete")
def tenant_delete(
    tenant: Annotated[str, TenantArg],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone, not even from backups.")] = False,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Crypto-shred a tenant: destroy its key, then delete its rows. Backups become unreadable too."""
    _tenant_delete(tenant, yes, as_json)


@friendly
def _tenant_delete(tenant: str, yes: bool, as_json: bool) -> None:
    if not yes:
        fail("deleting a tenant destroys its key and every record for good; pass --yes to confirm")
    accounts("tenant delete").delete_tenant(tenant)
    if as_json:
        emit_json({"tenant_id": tenant, "deleted": True})
    else:
        out.print(f"{tenant}: key destroyed, rows deleted", markup=False)


@tenant_app.command("admin-key")
def tenant_admin_key(
    tenant: Annotated[str, TenantArg],
    label: Annotated[str, typer.Option(help="What the key is for.")] = "operator-issued admin key",
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Mint a new admin key for a tenant (e.g. after its admins lost theirs). Printed once."""
    _tenant_admin_key(tenant, label, as_json)


@friendly
def _tenant_admin_key(tenant: str, label: str, as_json: bool) -> None:
    from faceward.security.permissions import Role
    from faceward.services.accounts import OPERATOR

    view, token = accounts("tenant admin-key").create_key(tenant, Role.ADMIN, label, None, actor=OPERATOR, source="cli")
    if as_json:
        emit_json({"tenant_id": tenant, "key_id": view.id, "admin_key": token})
    else:
        out.print(f"admin key: {token}", markup=False)


# -- audit --------------------------------------------------------------------------


def _live_tenants(service: AccountService, tenant: str | None) -> list[str]:
    if tenant is not None:
        service.store.get_tenant(tenant)
        return [tenant]
    return [tid for tid, status, _ in service.store.tenant_directory() if status != "deleted"]


@audit_app.command("verify")
def audit_verify(
    tenant: Annotated[Optional[str], TenantFilter] = None,
    operator: Annotated[bool, typer.Option("--operator", help="Check the operator audit log instead.")] = False,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Check every entry's MAC chains to the one before; exit 1 naming the first bad entry if not."""
    if operator:
        _operator_verify(as_json)
    else:
        _audit_verify(tenant, as_json)


@friendly
def _operator_verify(as_json: bool) -> None:
    from faceward.security.operator_log import OperatorLog, OperatorLogError

    from faceward.bootstrap import master_keyring

    s = settings()
    log = OperatorLog(s.home / OperatorLog.FILE_NAME, keyring=master_keyring(s))
    try:
        entries = log.entries()
    except OperatorLogError as exc:
        data: dict[str, Any] = {"ok": False, "reason": exc.message}
    else:
        data = {"ok": True, "entries": len(entries), "head": entries[-1].hash if entries else None}
    if as_json:
        emit_json(data)
    else:
        out.print(f"operator log {log.path}: " + (f"{data['entries']} entries: ok" if data["ok"] else data["reason"]),
                  markup=False)
    if not data["ok"]:
        raise typer.Exit(1)


@friendly
def _audit_verify(tenant: str | None, as_json: bool) -> None:
    service = accounts("audit verify")
    reports: list[tuple[str, AuditReport]] = [(t, service.audit.verify(t)) for t in _live_tenants(service, tenant)]
    bad = [(t, r) for t, r in reports if not r.ok]
    per_tenant = [{"tenant_id": t, **r.as_dict()} for t, r in reports]
    if tenant is not None:
        data: dict[str, Any] = per_tenant[0]
    else:
        data = {
            "ok": not bad,
            "entries": sum(r.entries for _, r in reports),
            "first_bad": bad[0][1].first_bad if bad else None,
            "tenant": bad[0][0] if bad else None,
            "tenants": per_tenant,
        }
    if as_json:
        emit_json(data)
    else:
        for t, r in reports:
            verdict = "ok" if r.ok else f"BROKEN at entry {r.first_bad}: {r.reason}"
            out.print(f"{t}: {r.entries} entries, head {r.head}: {verdict}", markup=False)
    if bad:
        raise typer.Exit(1)


@audit_app.command("timeline")
def audit_timeline(
    since: Annotated[Optional[str], typer.Option(help="From this ISO date or date-time (inclusive, UTC unless given).")] = None,
    until: Annotated[Optional[str], typer.Option(help="Up to this ISO date or date-time (exclusive).")] = None,
    tenant: Annotated[Optional[str], TenantFilter] = None,
    actor: Annotated[Optional[str], typer.Option(help="Only this actor, e.g. key:<id> or operator.")] = None,
    action: Annotated[Optional[str], typer.Option(help="Only this action, e.g. search or key.revoke.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many entries per tenant (1-1000).")] = 1000,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Who did what, when, and from where, oldest first, across tenants unless --tenant is given."""
    _audit_timeline(since, until, tenant, actor, action, limit, as_json)


@friendly
def _audit_timeline(
    since: str | None, until: str | None, tenant: str | None, actor: str | None, action: str | None,
    limit: int, as_json: bool,
) -> None:
    start, end = parse_moment(since, name="--since"), parse_moment(until, name="--until")
    service = accounts("audit timeline")
    rows: list[tuple[str, AuditEntry]] = []
    for tid in _live_tenants(service, tenant):
        entries = service.audit.entries(tid, since=start, until=end, actor=actor, action=action, limit=limit)
        rows += [(tid, e) for e in entries]
    rows.sort(key=lambda r: (r[1].at, r[0], r[1].seq))
    if as_json:
        emit_json({"entries": [{"tenant_id": t, **e.as_dict()} for t, e in rows]})
        return
    if not rows:
        out.print("no audit entries match", markup=False)
        return
    # One table per tenant under its id: the widest column is not repeated on every line.
    for t in dict.fromkeys(t for t, _ in rows):
        entries = [e for tid, e in rows if tid == t]
        out.print(table(
            ["when", "seq", "who", "what", "from where", "details"],
            [[rfc3339(e.at.replace(microsecond=0)), str(e.seq), e.actor, e.action, e.source or "-",
              ", ".join(f"{k}={shown(v)}" for k, v in sorted(e.details.items()))] for e in entries],
            whole={"when", "seq", "what"}, title=f"tenant {t}",
        ))
