"""Operator commands: tenants, the audit log, the master key. They run on the server, not through the API.

Tenant names are opened with the master key here and nowhere else; no API key,
whatever its role, can list tenants or read another tenant's audit log.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from faceward.bootstrap import key_file
from faceward.cli.acting import open_services
from faceward.cli.common import JsonOpt, command_group, emit_json, fail, friendly, out, settings, shown, table
from faceward.errors import InvalidInput
from faceward.security.crypto import Keyring, load_master_key
from faceward.security.keyfile import FileKeyring, rotate_online
from faceward.security.pkcs11 import Pkcs11Keyring, open_keyring
from faceward.services.accounts import AccountService
from faceward.security.audit import AuditEntry, AuditReport
from faceward.settings import Kms
from faceward.text import rfc3339

tenant_app = command_group(help="Create, list, suspend and delete tenants (operator only).")
audit_app = command_group(help="Verify the audit chains; read who did what, when, from where.")
keys_app = command_group(help="Master key operations.")

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
    # One table per tenant under its id: the widest column is not repeated on every line.
    for t in dict.fromkeys(t for t, _ in rows):
        entries = [e for tid, e in rows if tid == t]
        out.print(table(
            ["when", "seq", "who", "what", "from where", "details"],
            [[rfc3339(e.at.replace(microsecond=0)), str(e.seq), e.actor, e.action, e.source or "-",
              ", ".join(f"{k}={shown(v)}" for k, v in sorted(e.details.items()))] for e in entries],
            whole={"when", "seq", "what"}, title=f"tenant {t}",
        ))


# -- master key ---------------------------------------------------------------------


@keys_app.command("rotate-master")
def rotate_master(
    new_key_file: Annotated[
        Optional[Path], typer.Option("--new-key-file", help="The new master key (base64, mode 0600); not with an HSM.")
    ] = None,
    online: Annotated[bool, typer.Option("--online", help="Key file: rotate while servers keep serving.")] = False,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Re-wrap every tenant key under a new master key.

    With FACEWARD_KMS=pkcs11 it runs online: a new key is generated in the token and every tenant
    key re-wrapped under it while the service keeps serving (old and new both unwrap). With the key
    file, --online does the same through <key file>.next, which servers follow; the old key is kept
    as <key file>.retired-<time>. With --new-key-file, stop the service and restart it with the new
    key (e.g. head -c32 /dev/urandom | base64). Running it again after an interruption
    finishes the job. Backups taken before the rotation still need the old master key: keep it as
    long as they are kept.
    """
    _rotate_master(new_key_file, online, as_json)


@friendly
def _rotate_master(new_key_file: Path | None, online: bool, as_json: bool) -> None:
    service = accounts("keys rotate-master")
    keyring = service.gallery.keyring
    if online and not isinstance(keyring, Pkcs11Keyring):
        if new_key_file is not None or not isinstance(keyring, FileKeyring):
            fail("--online rotates the key file itself: drop --new-key-file, and unset FACEWARD_MASTER_KEY")
        done = rotate_online(keyring, service.rotate_master)
        if as_json:
            emit_json(done)
            return
        out.print(f"re-wrapped {done['rotated']} tenant keys under the new key in {done['key_file']}; no restart "
                  f"needed; the old key is kept in {done['retired_key_file']} for backups made before now", markup=False)
        return
    if isinstance(keyring, Pkcs11Keyring):
        if new_key_file is not None:
            fail("FACEWARD_KMS=pkcs11: the new master key is generated inside the token; drop --new-key-file")
        old = keyring.current_label()
        label = keyring.generate()
        counts = service.rotate_master(keyring.pinned(label))
        if as_json:
            emit_json({**counts, "old_key": old, "new_key": label})
            return
        out.print(f"re-wrapped {counts['rotated']} tenant keys under {label} in the token (was {old}); no restart needed",
                  markup=False)
        out.print(f"keep {old} in the token while backups made before now are kept", markup=False)
        return
    if new_key_file is None:
        fail("--new-key-file is required with a master key file (FACEWARD_KMS=file)")
    new_key = load_master_key(None, new_key_file)
    if getattr(keyring, "_master", None) == new_key:
        fail("the new master key is the one in use")
    counts = service.rotate_master(Keyring(new_key))
    if as_json:
        emit_json({**counts, "new_key_file": new_key_file})
        return
    out.print(f"re-wrapped {counts['rotated']} tenant keys ({counts['already']} already under the new key)", markup=False)
    out.print(f"now point FACEWARD_MASTER_KEY_FILE at {new_key_file} (or unset FACEWARD_MASTER_KEY) and restart", markup=False)


@keys_app.command("retire-master")
def retire_master(
    label: Annotated[str, typer.Argument(help="The old master key's label, e.g. faceward-master.1.")],
    yes: Annotated[bool, typer.Option("--yes", help="Backups wrapped under it become unreadable: confirm.")] = False,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Delete an old master key from the HSM token once nothing live is wrapped under it.

    After `keys rotate-master`, the old key only opens backups made before the rotation. Retire it
    when those have aged out (`faceward backup --max-age`): it is refused while any tenant key or the
    operator log's key is still wrapped under it, and the current key can never be retired.
    """
    _retire_master(label, yes, as_json)


@friendly
def _retire_master(label: str, yes: bool, as_json: bool) -> None:
    service = accounts("keys retire-master")
    keyring = service.gallery.keyring
    if not isinstance(keyring, Pkcs11Keyring):
        fail("retire-master is for master keys in an HSM (FACEWARD_KMS=pkcs11); a key file is retired by deleting it")
    if not yes:
        fail(f"backups wrapped under {label} can never be restored once it is retired; add --yes to retire it")
    done = service.retire_master(keyring, label)
    if as_json:
        emit_json(done)
        return
    out.print(f"retired {label}; the token holds {', '.join(done['remaining'])}", markup=False)


@keys_app.command("migrate")
def keys_migrate(
    to: Annotated[Kms, typer.Option("--to", help="Where the master key goes: pkcs11 (the token in FACEWARD_PKCS11_*).")],
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Move the home off its master key file: every tenant key is re-wrapped inside the HSM token.

    Stop the service first; afterwards start it with FACEWARD_KMS=pkcs11. The key file is left in
    place: move it offline (not delete it) while backups made before the migration are kept, since
    only it opens them.
    """
    _keys_migrate(to, as_json)


@friendly
def _keys_migrate(to: Kms, as_json: bool) -> None:
    if to is not Kms.PKCS11:
        fail("only --to pkcs11 is supported (moving a key out of an HSM would defeat it)")
    s = settings()
    source = s.model_copy(update={"kms": Kms.FILE})
    service = open_services(source, "keys migrate").accounts  # the gallery as it is today: unwrapping with the key file
    token = open_keyring(s)
    label, created = token.ensure()
    counts = service.rotate_master(token.pinned(label))
    data = {**counts, "hsm_key": label, "key_created": created, "old_key_file": str(key_file(s))}
    if as_json:
        emit_json(data)
        return
    out.print(f"re-wrapped {counts['rotated']} tenant keys under {label} in token {s.pkcs11_token} "
              f"({counts['already']} already there)", markup=False)
    out.print(f"now start the service with FACEWARD_KMS=pkcs11, and move {key_file(s)} offline: it still opens the "
              "backups made before now, and nothing else should", markup=False)
