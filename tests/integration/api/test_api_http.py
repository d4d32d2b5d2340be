"""HTTP itself: the one error shape, security headers, body caps, rate limits, docs, no CORS."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from apiworld import World, make_settings, make_world

from faceward.api.app import JSON_BODY_LIMIT, create_app
from faceward.api.middleware import API_CSP
from faceward.security.permissions import Role
from faceward.services.operations import Limits
from faceward.vision import FaceEngine
from faceward.vision.types import Face

SUBJECT = {"display_name": "Jo", "consent": {"basis": "explicit_consent", "reference": "R-1", "given_at": "2025-01-01T00:00:00Z"}}

STRICT_HEADERS = {
    "content-security-policy": API_CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def assert_error(response: object, status: int, code: str | None = None) -> dict[str, str]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    if code:
        assert body["error"]["code"] == code, body
    for name, value in STRICT_HEADERS.items():
        assert response.headers[name] == value  # type: ignore[attr-defined]
    assert "server" not in response.headers  # type: ignore[attr-defined]
    return body["error"]  # type: ignore[no-any-return]


def test_healthz_needs_no_key_and_says_nothing(sqlite_world: World) -> None:
    response = sqlite_world.api.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    for name, value in STRICT_HEADERS.items():
        assert response.headers[name] == value


def test_openapi_and_docs(sqlite_world: World) -> None:
    schema = sqlite_world.api.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http", "scheme": "bearer", "description": schema["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    text = json.dumps(schema).lower()
    assert '"format": "uri"' not in text and "image_url" not in text  # uploads only, never a URL to fetch
    assert "HTTPValidationError" not in json.dumps(schema)  # every 422 is the one error shape
    docs = sqlite_world.api.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    csp = docs.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "'sha256-" in csp and "'unsafe-inline'" not in csp.split("style-src")[0]
    assert "http" not in csp and "cdn" not in docs.text.lower()  # works offline: assets ship in a package
    asset = sqlite_world.api.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000
    assert sqlite_world.api.get("/redoc").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/nope", {}, 404, "not_found"),
        ("GET", "/v1/nope", {}, 404, "not_found"),
        ("PUT", "/v1/subjects", {}, 405, "method_not_allowed"),
        ("POST", "/v1/subjects", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "invalid_request"),
        ("POST", "/v1/subjects", {"json": {**SUBJECT, "consent": None}}, 422, "invalid_request"),
        ("POST", "/v1/subjects", {"json": {**SUBJECT, "extra": 1}}, 422, "invalid_request"),
        ("POST", "/v1/subjects", {"json": {**SUBJECT, "display_name": "a\x00b"}}, 422, "invalid_request"),
        ("POST", "/v1/subjects", {"json": {**SUBJECT, "display_name": "   "}}, 422, "invalid_request"),
        ("POST", "/v1/subjects", {"json": {**SUBJECT, "consent": {**SUBJECT["consent"], "basis": "because"}}}, 422, "invalid_request"),  # type: ignore[dict-item]
        ("POST", "/v1/subjects", {"json": {**SUBJECT, "consent": {**SUBJECT["consent"], "given_at": "2999-01-01T00:00:00Z"}}}, 422, "consent_required"),  # type: ignore[dict-item]
        ("POST", "/v1/subjects", {"json": {**SUBJECT, "consent": {**SUBJECT["consent"], "given_at": "0001-01-01T00:00:00+23:59"}}}, 422, "invalid_request"),  # type: ignore[dict-item]
        ("POST", "/v1/subjects", {"content": json.dumps({**SUBJECT, "display_name": "\ud800"}).encode(), "headers": {"content-type": "application/json"}}, 422, "invalid_request"),
        ("POST", "/v1/subjects/s_x/faces", {"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data; boundary=x"}}, None, None),
        ("POST", "/v1/search", {"json": {"image": "aGVsbG8="}}, 422, "invalid_request"),
        ("GET", "/v1/subjects?limit=0", {}, 422, "invalid_request"),
        ("GET", "/v1/subjects?offset=99999999999999999999", {}, 422, "invalid_request"),
        ("GET", "/v1/audit?since=yesterday", {}, 422, "invalid_request"),
        ("GET", "/v1/audit?since=0.3333333333333333", {}, 422, "invalid_request"),  # not Unix time
    ],
)
def test_every_failure_has_the_one_error_shape(
    sqlite_world: World, method: str, path: str, kwargs: dict[str, object], status: int | None, code: str | None
) -> None:
    w = sqlite_world
    role = Role.AUDITOR if path.startswith("/v1/audit") else Role.ENROLLER
    response = w.api.request(method, path, headers=w.own.auth(role) | dict(kwargs.pop("headers", {})), **kwargs)  # type: ignore[arg-type]
    if status is None:
        assert 400 <= response.status_code < 500
        assert_error(response, response.status_code)
    else:
        assert_error(response, status, code)


def test_validation_errors_name_fields_not_values(sqlite_world: World) -> None:
    w = sqlite_world
    secret = "Sensitive Person Name " * 20
    body = {**SUBJECT, "display_name": secret}
    error = assert_error(w.api.post("/v1/subjects", headers=w.own.auth(Role.ENROLLER), json=body), 422, "invalid_request")
    assert "display_name" in error["message"] and "Sensitive" not in error["message"]


def test_an_unexpected_error_is_a_bare_500_logged_with_its_trace(
    sqlite_world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    w = sqlite_world

    def explode(*_a: object, **_k: object) -> None:
        raise RuntimeError("boom: secret internals /etc/passwd")

    monkeypatch.setattr(w.services.gallery, "list_subjects", explode)
    with caplog.at_level(logging.ERROR, logger="faceward.api"):
        response = w.api.get("/v1/subjects", headers=w.own.auth(Role.ENROLLER))
    error = assert_error(response, 500, "internal_error")
    assert "boom" not in response.text and "Traceback" not in response.text and "passwd" not in response.text
    assert any("boom" in (r.exc_text or "") for r in caplog.records)
    assert error["message"]


def test_domain_5xx_errors_hide_their_details(sqlite_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceward.security.errors import SealError

    def broken(*_a: object, **_k: object) -> None:
        raise SealError("sealed value failed authentication for row t_123")

    monkeypatch.setattr(sqlite_world.services.gallery, "list_subjects", broken)
    error = assert_error(sqlite_world.api.get("/v1/subjects", headers=sqlite_world.own.auth(Role.ENROLLER)), 500, "seal_error")
    assert "t_123" not in error["message"]


def test_no_cors_by_default(sqlite_world: World) -> None:
    preflight = sqlite_world.api.request(
        "OPTIONS", "/v1/subjects", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    plain = sqlite_world.api.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in plain.headers


def test_body_over_the_cap_is_refused_by_content_length_before_reading(sqlite_world: World) -> None:
    w = sqlite_world
    big = b"{" + b" " * (JSON_BODY_LIMIT + 10) + b"}"
    response = w.api.post("/v1/subjects", content=big, headers={"content-type": "application/json"})
    assert_error(response, 401, "unauthenticated")  # without a key, nothing past the headers is looked at
    assert response.headers["connection"] == "close"
    response = w.api.post("/v1/subjects", content=big, headers=w.own.auth(Role.ENROLLER) | {"content-type": "application/json"})
    assert_error(response, 413, "body_too_large")
    upload_cap = w.services.settings.max_image_bytes
    response = w.api.post("/v1/search", headers=w.own.auth(Role.SEARCHER), data={"purpose": "p", "case_reference": "c"},
                          files={"image": ("x.jpg", b"\xff" * (upload_cap + 70_000), "image/jpeg")})
    assert_error(response, 413, "body_too_large")


def test_body_over_the_cap_is_refused_while_streaming(sqlite_world: World) -> None:
    w = sqlite_world
    sent = 0

    async def chunks(head: bytes = b"") -> AsyncIterator[bytes]:
        nonlocal sent
        yield head
        for _ in range(1000):
            sent += 16_384
            yield b"x" * 16_384

    response = w.api.post("/v1/subjects", content=chunks(), headers=w.own.auth(Role.ENROLLER) | {"content-type": "application/json"})
    assert_error(response, 413, "body_too_large")
    assert "content-length" not in response.request.headers
    response = w.api.post(
        f"/v1/subjects/{w.own.subject_id}/faces",
        content=chunks(b'--abc\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
                       b"Content-Type: image/jpeg\r\n\r\n"),
        headers=w.own.auth(Role.ENROLLER) | {"content-type": "multipart/form-data; boundary=abc"},
    )
    assert_error(response, 413, "body_too_large")
    assert sent < 2 * w.services.settings.max_image_bytes  # it stopped reading soon after the cap


def test_malformed_content_length_is_a_400(sqlite_world: World) -> None:
    w = sqlite_world
    response = w.api.post("/v1/subjects", content=b"{}",
                          headers=w.own.auth(Role.ENROLLER) | {"content-length": "-5", "content-type": "application/json"})
    assert_error(response, 400)


@pytest.fixture()
def tight_world(tmp_path: Path, face_engine: FaceEngine, astronaut_face: Face, images: dict[str, bytes]) -> Iterator[World]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'faceward.db'}")
    app = create_app(settings, engine=face_engine, limits=Limits(requests_per_minute=6, burst=2, searches_per_day=1))
    w = make_world(app, astronaut_face, images)
    yield w
    w.api.close()


def test_rate_limit_is_a_429_with_retry_after(tight_world: World) -> None:
    w = tight_world
    auth = w.own.auth(Role.AUDITOR)
    assert [w.api.get("/v1/audit", headers=auth).status_code for _ in range(2)] == [200, 200]
    response = w.api.get("/v1/audit", headers=auth)
    assert_error(response, 429, "rate_limited")
    assert response.headers["retry-after"] == "10"
    assert w.api.get("/v1/usage", headers=w.own.auth(Role.ADMIN)).status_code == 200


def test_daily_search_quota_is_a_429(tight_world: World) -> None:
    w = tight_world
    auth = w.own.auth(Role.SEARCHER)
    form = {"purpose": "p", "case_reference": "c"}
    first = w.api.post("/v1/search", headers=auth, data=form, files={"image": ("x.png", b"\x89PNG\r\n\x1a\nxx", "image/png")})
    assert_error(first, 422, "corrupt_image")  # counted all the same: the quota limits probing
    second = w.api.post("/v1/search", headers=auth, data=form, files={"image": ("x.png", b"\x89PNG\r\n\x1a\nxx", "image/png")})
    assert_error(second, 429, "rate_limited")
    assert 1 <= int(second.headers["retry-after"]) <= 86_400


def test_client_address_and_key_are_audited(sqlite_world: World) -> None:
    w = sqlite_world
    w.api.get("/v1/keys", headers=w.own.auth(Role.ADMIN))
    entry = [e for e in w.services.audit.entries(w.own.id, limit=1000) if e.action == "key.list"][-1]
    assert entry.actor == f"key:{w.own.key_ids[Role.ADMIN]}" and entry.source == "api:127.0.0.1"

