"""An in-process API world: an app, two tenants, a key for every role in each.

Requests go through httpx's ASGI transport (no server). Enrolled fixtures are admitted
from a precomputed descriptor, so only the tests that exercise the engine pay for it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from fastapi import FastAPI

from faceward.api.deps import Services
from faceward.security.oidc import Provider
from faceward.security.permissions import Role
from faceward.services.consent import Consent
from faceward.services.operations import Limits
from faceward.settings import Settings
from faceward.vision.types import Face

NOW = datetime.now(timezone.utc)
GENEROUS = Limits(requests_per_minute=1_000_000, burst=100_000, searches_per_day=1_000_000)
IMAGE_CAP = 1024 * 1024  # small caps keep the oversized-upload tests cheap


class Api:
    """A synchronous face on ``httpx.AsyncClient`` over ASGI, with one event loop per client."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://faceward.test")

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


@dataclass
class Tenant:
    id: str
    tokens: dict[Role, str] = field(default_factory=dict)
    key_ids: dict[Role, str] = field(default_factory=dict)
    subject_id: str = ""  # a subject with one enrolled face (the astronaut)

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@dataclass
class World:
    app: FastAPI
    api: Api
    services: Services
    own: Tenant
    foreign: Tenant
    face: Face
    images: dict[str, bytes] = field(default_factory=dict)
    issuer: str = ""  # a real OpenID Connect provider on loopback, for the sign-in routes (set by tests that use it)

    def consent(self) -> Consent:
        return Consent.build("explicit_consent", "form-1", NOW - timedelta(days=1), None, now=NOW)

    def new_subject(self, tenant: Tenant, name: str = "Jane Roe", *, with_face: bool = False) -> str:
        gallery = self.services.gallery
        subject = gallery.create_subject(tenant.id, name, self.consent())
        if with_face:
            self.admit(tenant, subject.id)
        return subject.id

    def admit(self, tenant: Tenant, subject_id: str) -> str:
        face = self.face
        assert face.descriptor is not None
        digest = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
        view = self.services.gallery.admit(tenant.id, subject_id, face.descriptor, face.quality, face.box.as_dict(), digest, 1)
        return view.id

    def new_key(self, tenant: Tenant, role: Role = Role.SEARCHER) -> tuple[str, str]:
        view, token = self.services.accounts.create_key(tenant.id, role, "test", None, actor="operator", source="test")
        return view.id, token

    def faces(self, tenant: Tenant) -> int:
        return self.services.gallery.store.count_faces(tenant.id)

    def audit_actions(self, tenant: Tenant) -> list[str]:
        return [e.action for e in self.services.audit.entries(tenant.id, limit=1000)]



@contextmanager
def replicas(settings: Settings, redis_url: str, count: int = 2, **app_args: Any) -> Iterator[tuple[list[FastAPI], list[Api]]]:
    """``count`` API apps on one store and one Redis, as replicas run; their shared buckets are cleared after."""
    import redis

    from faceward.api.app import create_app

    apps = [create_app(settings, **app_args) for _ in range(count)]
    apis = [Api(app) for app in apps]
    client = redis.Redis.from_url(redis_url)
    try:
        yield apps, apis
    finally:
        for key in client.scan_iter("faceward:bucket:*"):
            client.delete(key)
        client.close()
        for api, app in zip(apis, apps):
            api.close()
            app.state.services.gallery.store.close()

def make_settings(home: Path, db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": home, "database_url": db_url, "master_key": base64.b64encode(os.urandom(32)).decode(),
        "max_image_bytes": IMAGE_CAP,
        "auth_failures_per_minute": 1_000_000,  # the matrix tries many bad keys; test_auth_failures.py the throttle
    }
    values.update(overrides)
    return Settings(**values)


def make_tenant(services: Services, name: str) -> Tenant:
    tenant_id, admin = services.accounts.create_tenant(name)
    tenant = Tenant(tenant_id)
    tenant.tokens[Role.ADMIN] = admin
    tenant.key_ids[Role.ADMIN] = admin.split("_")[1]
    for role in (Role.ENROLLER, Role.SEARCHER, Role.AUDITOR):
        view, token = services.accounts.create_key(tenant_id, role, f"{role.value} key", None, actor="operator", source="test")
        tenant.tokens[role] = token
        tenant.key_ids[role] = view.id
    return tenant


class LoopbackOnly(httpx.HTTPTransport):
    """The sign-in provider's HTTP in API tests: loopback only, so fuzzed issuers never leave the machine."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host not in ("127.0.0.1", "localhost", "::1"):
            raise httpx.ConnectError("API tests reach loopback providers only", request=request)
        return super().handle_request(request)


def make_world(app: FastAPI, face: Face, images: dict[str, bytes]) -> World:
    services: Services = app.state.services
    services.signin.provider = Provider(http=lambda: httpx.Client(transport=LoopbackOnly(), timeout=10))
    own = make_tenant(services, "Own Org Ltd")
    foreign = make_tenant(services, "Foreign Org GmbH")
    world = World(app, Api(app), services, own, foreign, face, dict(images))
    own.subject_id = world.new_subject(own, "Own Subject", with_face=True)
    foreign.subject_id = world.new_subject(foreign, "Foreign Subject", with_face=True)
    return world




def blank_jpeg(side: int = 120) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((side, side, 3), 128, dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


@contextmanager
def pg_schema(admin: str) -> Iterator[str]:
    """A fresh PostgreSQL schema, dropped afterwards."""
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{admin}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
