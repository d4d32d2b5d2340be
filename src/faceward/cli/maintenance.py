"""Operator commands that keep the store honest: doctor, backup, restore, purge, retention."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from faceward.bootstrap import master_keyring
from faceward.cli.acting import open_services
from faceward.security.operator_log import OperatorLog
from faceward.cli.common import JsonOpt, TenantOpt, emit_json, err, friendly, local_tenant_file, out, settings, shown
from faceward.errors import InvalidInput
from faceward.security.errors import MasterKeyError
from faceward.text import rfc3339
from faceward.store import backup as backups
from faceward.store.backup_prune import prune_backups
from faceward.services.gallery import GalleryService
from faceward.services.doctor import doctor as run_doctor
from faceward.services.doctor import reconcile_ledger
from faceward.services.retention import purge_due, retention_days, set_retention
from faceward.store import SqlStore


def doctor(
    repair: Annotated[bool, typer.Option("--repair", help="Rebuild indexes from the store and fix what can be fixed.")] = False,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Check that no face lacks its subject, every key and template opens, erasures stuck, indexes agree.

    Exits 1 when a problem remains.
    """
    ok = _doctor(repair, as_json)
    if not ok:
        raise typer.Exit(1)


@friendly
def _doctor(repair: bool, as_json: bool) -> bool:
    gallery = open_services(settings(), "doctor").gallery
    try:
        report = run_doctor(gallery, repair=repair)
    finally:
        gallery.store.close()
    if as_json:
        emit_json(report.as_dict())
        return report.ok
    for name, values in report.checks.items():
        figures = "  ".join(f"{k}={v}" for k, v in values.items())
        out.print(f"{name}: {figures}", markup=False)
    for item in report.repairs:
        out.print(f"repaired: {item['repair']} ({item.get('tenant_id')})", markup=False)
    for problem in report.problems:
        ids = "".join(f" {key.removesuffix('_id')} {value}" for key, value in problem.items()
                      if key.endswith("_id") and key != "tenant_id" and value)
        err.print(f"problem: {problem['check']}/{problem['problem']} tenant {problem['tenant_id']}{ids}: "
                  f"{problem['message']}", markup=False)
    out.print("ok" if report.ok else "problems found" + ("" if repair else "; `faceward doctor --repair` fixes what it can"))
    return report.ok


def backup(
    path: Annotated[Path, typer.Argument(help="The backup file to write (sealed with a key only the master key opens).")],
    keep: Annotated[
        Optional[int], typer.Option("--keep", help="Then delete all but the newest N backups in the same folder.")
    ] = None,
    max_age: Annotated[
        Optional[float], typer.Option("--max-age", help="Then delete backups in the same folder older than DAYS.")
    ] = None,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Back up the store, consistent and online, to one encrypted file. The erasure ledger is not in it: keep that beside the master key.

    With --keep / --max-age, older backups in the same folder are deleted afterwards, so a subject erased
    today is in no backup once the newest backup from before the erasure has aged out.
    """
    _backup(path, keep, max_age, as_json)


@friendly
def _backup(path: Path, keep: int | None, max_age: float | None, as_json: bool) -> None:
    if keep is not None and keep < 1:
        raise InvalidInput("--keep must be at least 1")
    if max_age is not None and max_age <= 0:
        raise InvalidInput("--max-age must be a positive number of days")
    s = settings()
    keyring = master_keyring(s)
    # As the login role (on PostgreSQL a backup role with BYPASSRLS, see decision 007), not the app role.
    gallery = GalleryService(SqlStore.open(s.db_url, role=None), keyring, s)
    try:
        # Erasures the store knows but the ledger lacks (a worker with another ledger path) go in first.
        reconcile_ledger(gallery)
    except Exception as exc:  # a driver error included
        # Worth saying, not worth refusing the backup for: the ledger already holds every erasure made
        # through a service that shares it.
        err.print(f"warning: could not compare the store's erasures with the ledger: {str(exc).splitlines()[0]}", markup=False)
    finally:
        gallery.store.close()
    marker = local_tenant_file(s)
    extra = {"local_tenant": marker.read_text().strip()} if marker.is_file() else {}
    info = backups.backup(s.db_url, keyring, gallery.ledger, path, scratch=s.home, extra=extra)
    age = timedelta(days=max_age) if max_age is not None else None
    pruned = prune_backups(path.parent, keep=keep, max_age=age, now=info.created_at, protect=path)
    data = {**info.as_dict(), "pruned": [p.as_dict() for p in pruned]}
    if as_json:
        emit_json(data)
        return
    for item in pruned:
        out.print(f"pruned backup {item.backup_id} of {rfc3339(item.created_at)}: {item.path}", markup=False)
    out.print(f"backup {info.backup_id} of the {info.database} store: {path} ({info.bytes} bytes)", markup=False)
    out.print(f"erasure ledger at backup time: {info.ledger.count} entries; keep {gallery.ledger.path} beside the master key",
              markup=False)


def restore(
    path: Annotated[Path, typer.Argument(help="A file made by `faceward backup`.")],
    without_ledger: Annotated[
        bool, typer.Option("--without-ledger", help="Restore although the erasure ledger is lost: erased subjects may come back.")
    ] = False,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Restore a backup into a fresh home (or an empty PostgreSQL database), then erase again everything the ledger lists."""
    _restore(path, without_ledger, as_json)


@friendly
def _restore(path: Path, without_ledger: bool, as_json: bool) -> None:
    s = settings()
    try:
        keyring = master_keyring(s)  # never create a key here: only the backup's master key opens it
    except MasterKeyError as exc:
        raise MasterKeyError(
            f"{exc.message.split(' (run', 1)[0]}. A restore needs the master key the backup was made under "
            "(FACEWARD_MASTER_KEY_FILE or FACEWARD_MASTER_KEY); `faceward init` would make a new key, which "
            "cannot open it"
        ) from None
    s.home.mkdir(parents=True, exist_ok=True)
    s.home.chmod(0o700)
    from faceward.store.ledger import ErasureLedger

    ledger = ErasureLedger(s.erasure_ledger_file, keyring)
    report = backups.restore(path, s.db_url, keyring, ledger, scratch=s.home, allow_missing_ledger=without_ledger)
    OperatorLog(s.home / OperatorLog.FILE_NAME, keyring=keyring, command="restore").append("backup.restore", tenant_id=None, details={
        "backup_id": report.backup_id, "subjects_erased_again": len(report.subjects_erased_again),
        "tenants_erased_again": len(report.tenants_erased_again),
    })
    local = report.extra.get("local_tenant")
    marker = local_tenant_file(s)
    if local and not marker.exists() and local not in report.tenants_erased_again:
        marker.write_text(f"{local}\n")
    if report.subjects_erased_again:  # their review steps name them only under a key: delete them now it is open
        services = open_services(s, "restore")
        try:
            by_tenant: dict[str, list[str]] = {}
            for tenant_id, subject_id in report.subjects_erased_again:
                by_tenant.setdefault(tenant_id, []).append(subject_id)
            for tenant_id, subject_ids in by_tenant.items():
                services.console.reviews.forget_erased(tenant_id, subject_ids)
        finally:
            services.gallery.store.close()
    data: dict[str, Any] = report.as_dict()
    if as_json:
        emit_json(data)
        return
    out.print(f"restored backup {report.backup_id} of {rfc3339(report.created_at)} into {s.db_url.split('@')[-1]}",
              markup=False)
    out.print(f"erased again from the ledger: {len(report.subjects_erased_again)} subject(s), "
              f"{len(report.tenants_erased_again)} tenant(s)", markup=False)


def purge(as_json: Annotated[bool, JsonOpt] = False) -> None:
    """Erase subjects whose consent expired or who are older than their tenant's retention period."""
    _purge(as_json)


@friendly
def _purge(as_json: bool) -> None:
    services = open_services(settings(), "purge")
    try:
        report = purge_due(services.gallery, audit=services.audit)
    finally:
        services.gallery.store.close()
    data = report.as_dict()
    if as_json:
        emit_json(data)
    else:
        out.print(f"purged {data['purged']} subject(s) in {data['tenants']} tenant(s) {shown(data['by_reason'])}",
                  markup=False)
        for item in report.failed:
            err.print(f"failed: {item['tenant_id']} {item['subject_id']}: {item['reason']}", markup=False)
    if report.failed:
        raise typer.Exit(1)


def retention(
    days: Annotated[Optional[int], typer.Argument(help="Days a subject is kept after enrollment; omit to show.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Keep subjects until their consent expires or they are erased.")] = False,
    tenant: Annotated[Optional[str], TenantOpt] = None,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Show or set the tenant's retention period (`faceward purge` applies it)."""
    _retention(days, clear, tenant, as_json)


@friendly
def _retention(days: int | None, clear: bool, tenant: str | None, as_json: bool) -> None:
    if clear and days is not None:
        raise InvalidInput("give DAYS or --clear, not both")
    s = settings()
    gallery = open_services(s, "retention").gallery
    try:
        marker = local_tenant_file(s)
        tenant_id = tenant or (marker.read_text().strip() if marker.is_file() else None)
        if not tenant_id:
            raise InvalidInput("no tenant: pass --tenant")
        if clear or days is not None:
            set_retention(gallery, tenant_id, days)
        current = retention_days(gallery.store.get_tenant(tenant_id))
    finally:
        gallery.store.close()
    if as_json:
        emit_json({"tenant_id": tenant_id, "retention_days": current})
    else:
        out.print(f"tenant {tenant_id}: " + (f"retention {current} days" if current else "no retention period"), markup=False)
