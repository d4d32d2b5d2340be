"""The application factory: ``create_app(settings) -> FastAPI``.

The service graph comes from :func:`faceward.wiring.build_services` (the same one
every CLI command builds) and is kept on ``app.state`` (no module-level singletons). Creating the app fails, before anything is served,
when there is no master key or it is a placeholder.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
import swagger_ui_bundle

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from faceward import __version__
from faceward.api import errors
from faceward.api.deps import identifier
from faceward.api.middleware import (
    AuthGateMiddleware,
    BodyIntakeMiddleware,
    CatchAllMiddleware,
    IntakeBudget,
    LoadShedMiddleware,
    SecurityHeadersMiddleware,
)
from faceward.api.observe import RequestTelemetryMiddleware, RouteTemplates
from faceward.api.routes import ROUTERS
from faceward.memory import limit_malloc_arenas
from faceward.services.retention import RetentionScheduler
from faceward.services.operations import Limits
from faceward.settings import Settings, load_settings
from faceward.telemetry import Telemetry
from faceward.vision import FaceEngine
from faceward.wiring import Services, build_services, settings_limits

log = logging.getLogger("faceward.api")

FLUSH_EVERY_S = 10.0
JSON_BODY_LIMIT = 64 * 1024
MULTIPART_OVERHEAD = 64 * 1024
DOCS_ASSETS = "/docs/assets"

DESCRIPTION = """\
Consent-first face search for one organisation per tenant.

* Authenticate with an API key: `Authorization: Bearer fw_<key id>_<secret>`.
* Every error has the shape `{"error": {"code": ..., "message": ...}}`.
* Search and verify results are **investigative leads** for a trained person to review,
  never identifications. Searches need a `purpose` and a `case_reference`; both are audited
  with the probe's SHA-256, and the probe image is never stored.
* Images are uploaded as bytes (JPEG, PNG or WebP); the API never fetches a URL.
"""


def body_limit(settings: Settings) -> Any:
    """Body caps by route: an image (two for /v1/verify) plus multipart overhead; 64 KiB for JSON."""
    one = settings.max_image_bytes + MULTIPART_OVERHEAD
    faces = re.compile(r"^/v1/subjects/[^/]+/faces/?$")

    def limit_for(path: str, method: str) -> int:
        if method == "POST":
            if path.rstrip("/") == "/v1/verify":
                return 2 * settings.max_image_bytes + MULTIPART_OVERHEAD
            if path.rstrip("/") in ("/v1/search", "/v1/detect") or faces.match(path):
                return one
        return JSON_BODY_LIMIT

    return limit_for


def intake_budget(settings: Settings) -> IntakeBudget:
    """Bodies read at once: twice the in-flight slots for keys, ``FACEWARD_UPLOADS_PER_KEY`` each,
    ``FACEWARD_MAX_UNAUTHENTICATED`` for everyone else; ``FACEWARD_BODY_MIN_RATE`` after ``FACEWARD_BODY_GRACE_S``."""
    return IntakeBudget(
        uploads=2 * settings.max_in_flight, uploads_per_key=settings.uploads_per_key,
        unauthenticated=settings.max_unauthenticated, min_rate=settings.body_min_rate, grace=settings.body_grace_s,
    )


def _docs_page(openapi_url: str) -> HTMLResponse:
    """Swagger UI from assets shipped in a package (no CDN), with a CSP allowing exactly its inline script."""
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title="faceward API",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url="data:,",
    )
    html = bytes(page.body).decode()
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    )
    csp = (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
    return HTMLResponse(html, headers={"content-security-policy": csp})


async def _flush_failures(services: Services) -> None:
    while True:
        await asyncio.sleep(FLUSH_EVERY_S)
        try:
            await anyio.to_thread.run_sync(services.accounts.flush_failures)
        except Exception:  # the next round tries again; the server keeps serving
            log.exception("could not record failed authentications")


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    engine: FaceEngine | None = None,
    limits: Limits | None = None,
) -> FastAPI:
    """The REST API. ``services`` (or ``engine``) lets tests share one face engine between apps."""
    limit_malloc_arenas()  # before the thread pool starts: see faceward.memory
    settings = settings or (services.settings if services else load_settings())
    services = services or build_services(settings, engine=engine, limits=limits)
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Consent expiry and tenant retention are enforced on a schedule while the server runs.
        purger = RetentionScheduler(services.gallery, every=settings.purge_every_s, audit=services.audit)
        purger.start()
        # Windows of failed authentications are recorded as they close, and what is open at shutdown.
        digest = asyncio.create_task(_flush_failures(services))
        try:
            yield
        finally:
            digest.cancel()
            purger.stop()
            await anyio.to_thread.run_sync(lambda: services.accounts.flush_failures(everything=True))
            if services.gallery.remote is not None:
                services.gallery.remote.close()

    app = FastAPI(
        lifespan=lifespan,
        title="faceward",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.services = services
    telemetry = Telemetry(services.gallery, services.audit, tenant_series=settings.metrics_tenant_series)
    app.state.telemetry = telemetry
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)  # a person who opens the address gets the console

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return _docs_page(app.openapi_url or "/openapi.json")

    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    # Added innermost first: the last one added is the outermost.
    app.add_middleware(LoadShedMiddleware, max_in_flight=settings.max_in_flight)
    app.add_middleware(BodyIntakeMiddleware, limit_for=body_limit(settings), budget=intake_budget(settings))
    app.add_middleware(AuthGateMiddleware, identify=identifier(services), bucket=services.operations.bucket)
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(  # sees every refusal above
        RequestTelemetryMiddleware, telemetry=telemetry, templates=RouteTemplates(lambda: app.openapi()["paths"])
    )
    app.add_middleware(SecurityHeadersMiddleware)
    return app


__all__ = ["build_services", "create_app", "intake_budget", "settings_limits"]
