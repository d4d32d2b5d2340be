"""``faceward oidc``: connect a tenant's OpenID Connect provider for console sign-in (decision 021).

The host's operator acts through the same use case as a tenant admin's ``PUT /v1/tenant/sign-in``
(:class:`~faceward.services.signin.SignInService`), audited in the tenant's chain as ``operator``.
The client secret is read from a file, never from the command line (which other users of the host
can see in the process list).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from faceward.cli.acting import acting
from faceward.cli.common import JsonOpt, TenantOpt, emit_fields, friendly, settings
from faceward.errors import InvalidInput

oidc_app = typer.Typer(help="Console sign-in through the organisation's OpenID Connect provider.", no_args_is_help=True)


def _shown(view: dict[str, Any] | None) -> dict[str, Any]:
    if view is None:
        return {"connected": False}
    mapping = view["mapping"]
    return {"connected": True, "issuer": view["issuer"], "client_id": view["client_id"],
            "client_secret": view["client_secret"], "claim": mapping["claim"],
            "roles": {r["value"]: r["role"] for r in mapping["rules"]}, "login_path": view["login_path"],
            "updated_at": view["updated_at"]}


def _secret(path: Path) -> str:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read the client secret ({exc.strerror or exc})") from None
    if not secret:
        raise InvalidInput(f"{path} is empty: it must hold the client secret")
    return secret


@oidc_app.command("connect")
def connect(
    issuer: Annotated[str, typer.Option(help="The provider's issuer URL (https; http only on loopback).")],
    client_id: Annotated[str, typer.Option(help="faceward's client id at the provider.")],
    client_secret_file: Annotated[Path, typer.Option(help="File holding the client secret.")],
    role: Annotated[list[str], typer.Option("--map", metavar="VALUE=ROLE", help="VALUE=ROLE, e.g. faceward-searchers=searcher; repeat; first match wins.")],
    claim: Annotated[str, typer.Option(help="The ID token claim whose values map to roles.")] = "groups",
    tenant: Annotated[Optional[str], TenantOpt] = None,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Connect (or change) the tenant's provider; prints the tenant's console sign-in path."""
    _connect(issuer, client_id, client_secret_file, role, claim, tenant, as_json)


@friendly
def _connect(issuer: str, client_id: str, secret_file: Path, rules: list[str], claim: str, tenant: str | None,
             as_json: bool) -> None:
    secret = _secret(secret_file)
    act = acting(settings(), "oidc connect", tenant)
    view = act.services.signin.connect(act.principal, issuer=issuer, client_id=client_id, client_secret=secret,
                                       claim=claim, rules=rules, source=act.source)
    emit_fields(_shown(view), as_json)


@oidc_app.command("show")
def show(tenant: Annotated[Optional[str], TenantOpt] = None, as_json: Annotated[bool, JsonOpt] = False) -> None:
    """The tenant's provider connection (never the secret) and sign-in path."""
    _show(tenant, as_json)


@friendly
def _show(tenant: str | None, as_json: bool) -> None:
    act = acting(settings(), "oidc show", tenant)
    emit_fields(_shown(act.services.signin.connection(act.principal, source=act.source)), as_json)


@oidc_app.command("disconnect")
def disconnect(tenant: Annotated[Optional[str], TenantOpt] = None, as_json: Annotated[bool, JsonOpt] = False) -> None:
    """Disconnect the provider; every person's console session ends."""
    _disconnect(tenant, as_json)


@friendly
def _disconnect(tenant: str | None, as_json: bool) -> None:
    act = acting(settings(), "oidc disconnect", tenant)
    emit_fields({"disconnected": act.services.signin.disconnect(act.principal, source=act.source)}, as_json)


__all__ = ["oidc_app"]
