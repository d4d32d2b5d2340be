"""``faceward serve``: run the REST API with uvicorn.

Without a master key it refuses to start (one line, exit 2). With ``--init``, or
on the first run with the embedded default home, it first creates the home and a
master key file (mode 0600), and a first tenant whose admin API key is printed
once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from faceward.bootstrap import init_home
from faceward.cli.common import err, friendly, local_tenant_file, out, settings
from faceward.settings import Settings, default_home

if TYPE_CHECKING:
    from fastapi import FastAPI

FIRST_TENANT = "default"


def serve(
    host: Annotated[Optional[str], typer.Option(help="Address to bind (default FACEWARD_HOST, 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port to bind (default FACEWARD_PORT, 8000).")] = None,
    init: Annotated[
        bool, typer.Option("--init", help="Create the home, a master key file and a first tenant if missing.")
    ] = False,
) -> None:
    """Serve the REST API (docs at /docs). Refuses to start without a master key."""
    _serve(host, port, init)


def fresh_default_home(s: Settings) -> bool:
    """The embedded default (platform data dir, SQLite, no key configured) and nothing in it yet."""
    if s.home != default_home() or s.database_url or s.master_key or s.master_key_file:
        return False
    return not s.home.exists() or not any(s.home.iterdir())


def _print_key(tenant_id: str, secret: str) -> None:
    out.print(f"tenant {tenant_id}: admin API key (shown once, store it now):", markup=False)
    out.print(f"  {secret}", markup=False)


@friendly
def _serve(host: str | None, port: int | None, init: bool) -> None:
    s = settings(host=host, port=port)
    if s.recognizer_manifest is not None:
        from faceward.vision.manifest import load_manifest

        load_manifest(s.recognizer_manifest)  # no licence on record: one line, before anything is made
    initialising = init or fresh_default_home(s)
    if initialising:
        result = init_home(s)
        out.print(f"home: {result.home}", markup=False)
        if result.hsm_key:
            out.print(f"master key in the HSM: {result.hsm_key}", markup=False)
        elif result.key_created:
            out.print(f"created master key file {result.key_file} (mode 0600): back it up apart from the data", markup=False)
    from faceward.api.app import create_app  # imported late: `faceward --help` stays fast

    app = create_app(s)  # MasterKeyError (no key, placeholder) ends here with one line
    if initialising:
        _ensure_first_tenant(s, app)
    elif _no_tenant(app):
        err.print("no tenant yet: run `faceward serve --init` once to create one and its admin key", markup=False)
    import uvicorn

    from faceward.settings import LogFormat
    from faceward.telemetry import configure_logging

    json_logs = s.log_format is LogFormat.JSON
    configure_logging(json_logs)
    if s.metrics_port is not None:
        from prometheus_client import start_http_server

        # A bind of its own for the scraper (no token there): keep it on a private address.
        start_http_server(s.metrics_port, addr=s.metrics_host, registry=app.state.telemetry.registry)
        out.print(f"metrics: http://{s.metrics_host}:{s.metrics_port}/metrics", markup=False)
    shown = f"[{s.host}]" if ":" in s.host else s.host
    out.print(f"API docs: http://{shown}:{s.port}/docs   OpenAPI: http://{shown}:{s.port}/openapi.json", markup=False)
    out.print(f"web console: http://{shown}:{s.port}/console  (sign in with an API key)", markup=False)
    # faceward.access writes one line per request (JSON: request id, route, status, latency, refusal),
    # so uvicorn's own access log, which prints raw paths, stays off.
    uvicorn.run(app, host=s.host, port=s.port, server_header=False, proxy_headers=False, log_level="info",
                access_log=False, log_config=None)


def _no_tenant(app: FastAPI) -> bool:
    services = app.state.services
    return not services.gallery.store.list_tenants()


def _ensure_first_tenant(s: Settings, app: FastAPI) -> None:
    services = app.state.services
    accounts = services.accounts
    marker = local_tenant_file(s)
    tenants = [t for t in services.gallery.store.list_tenants() if t.wrapped_key is not None]
    if not tenants:
        tenant_id, secret = accounts.create_tenant(FIRST_TENANT)
        if not marker.exists():
            marker.write_text(tenant_id + "\n")
        _print_key(tenant_id, secret)
        return
    local = marker.read_text().strip() if marker.exists() else None
    if local and any(t.id == local for t in tenants) and not accounts.list_keys(local):
        from faceward.security.permissions import Role

        _, secret = accounts.create_key(local, Role.ADMIN, "initial admin key", None, actor="operator", source="cli:serve")
        _print_key(local, secret)
        return
    out.print("tenants exist already; no admin key was printed (keys are shown only when made)", markup=False)
