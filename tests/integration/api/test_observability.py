"""/metrics, /readyz and the per-request JSON log line, through HTTP with real stores."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from apiworld import GENEROUS, Api, World, make_settings, make_world, pg_schema
from prometheus_client.parser import text_string_to_metric_families

from faceward.api.app import create_app
from faceward.security.permissions import Role
from faceward.telemetry.logs import ACCESS_FIELDS, ACCESS_LOGGER, JsonFormatter
from faceward.vision import FaceEngine
from faceward.vision.types import Face

TOKEN = "metrics-" + "k3Yq9vWmZ2"
FORM = {"purpose": "identify a witness for case review", "case_reference": "CASE-2026-0042"}


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine, astronaut_face: Face,
             images: dict[str, bytes]) -> Iterator[World]:
    home = tmp_path_factory.mktemp("home")
    settings = make_settings(home, f"sqlite:///{home / 'faceward.db'}", metrics_token=TOKEN, metrics_tenant_series=True)
    app = create_app(settings, engine=face_engine, limits=GENEROUS)
    w = make_world(app, astronaut_face, images)
    yield w
    w.api.close()
    w.services.gallery.store.close()


def scrape(w: World) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = w.api.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def searches(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
    key = ("faceward_http_requests_total", (("method", "POST"), ("route", "/v1/search"), ("status", "200")))
    return samples.get(key, 0.0)


def test_metrics_count_a_search_and_name_nobody(observed: World, astronaut_probe: bytes) -> None:
    w = observed
    before = scrape(w)
    found = w.api.post("/v1/search", headers=w.own.auth(Role.SEARCHER), data=FORM,
                       files={"image": ("p.jpg", astronaut_probe, "image/jpeg")})
    assert found.status_code == 200 and found.json()["candidates"][0]["display_name"] == "Own Subject"
    response = w.api.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    after = scrape(w)
    assert searches(after) == searches(before) + 1
    latency = ("faceward_http_request_duration_seconds_count", (("method", "POST"), ("route", "/v1/search")))
    assert after[latency] == before.get(latency, 0.0) + 1
    assert after[("faceward_index_vectors", (("backend", "exact"),))] >= 1
    assert after[("faceward_index_sync_lag_faces", (("backend", "exact"),))] == 0
    assert after[("faceward_model_load_seconds", (("where", "api"),))] > 0
    assert ("faceward_audit_append_failures_total", ()) in after
    # The opted-in tenant series names the tenant by its opaque id only.
    assert after[("faceward_tenant_requests_total", (("tenant_id", w.own.id),))] >= 1
    for secret in ("Own Subject", "Foreign Subject", "Own Org", "Foreign Org", FORM["purpose"], FORM["case_reference"]):
        assert secret not in response.text


def test_refusals_are_counted_by_code(observed: World) -> None:
    w = observed
    before = scrape(w)
    assert w.api.get("/v1/subjects", headers={"Authorization": "Bearer fw_nokey_nosecret"}).status_code == 401
    # Without a key even an unknown route is a 401 (the gate answers before routing, decision 014).
    assert w.api.get("/v1/no-such-route", headers=w.own.auth(Role.ENROLLER)).status_code == 404
    after = scrape(w)
    key = ("faceward_refusals_total", (("code", "unauthenticated"), ("status", "401")))
    assert after[key] == before.get(key, 0.0) + 1
    # Refused by the gate before routing, and still counted under the route it was for.
    gated = ("faceward_http_requests_total", (("method", "GET"), ("route", "/v1/subjects"), ("status", "401")))
    assert after[gated] == before.get(gated, 0.0) + 1
    unmatched = ("faceward_http_requests_total", (("method", "GET"), ("route", "(unmatched)"), ("status", "404")))
    assert after[unmatched] == before.get(unmatched, 0.0) + 1
    assert not any("no-such-route" in str(labels) for _, labels in after)


def test_metrics_need_the_token(observed: World, tmp_path: Path, face_engine: FaceEngine) -> None:
    assert observed.api.get("/metrics").status_code == 401
    assert observed.api.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    plain = create_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'f.db'}"), engine=face_engine)
    api = Api(plain)
    try:
        assert api.get("/metrics").status_code == 404  # no token configured: not exposed on the API's bind
    finally:
        api.close()
        plain.state.services.gallery.store.close()


def test_one_json_log_line_per_request(observed: World, astronaut_probe: bytes, caplog: pytest.LogCaptureFixture) -> None:
    w = observed
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        response = w.api.post("/v1/search", headers={**w.own.auth(Role.SEARCHER), "X-Request-ID": "req-0123456789"},
                              data=FORM, files={"image": ("p.jpg", astronaut_probe, "image/jpeg")})
    assert response.headers["x-request-id"] == "req-0123456789"
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert {k: line[k] for k in ("request_id", "route", "status", "tenant_id", "actor", "refusal")} == {
        "request_id": "req-0123456789", "route": "/v1/search", "status": 200, "tenant_id": w.own.id,
        "actor": f"key:{w.own.key_ids[Role.SEARCHER]}", "refusal": None,
    }
    assert set(ACCESS_FIELDS) <= set(line) and line["latency_ms"] > 0
    for secret in ("Own Subject", FORM["purpose"], FORM["case_reference"]):
        assert secret not in lines[0]


def test_readyz_reports_each_check(observed: World) -> None:
    ready = observed.api.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["ready"] and set(body["checks"]) == {"store", "migrations", "models", "indexes"}
    assert observed.api.get("/healthz").status_code == 200


# -- readiness across a PostgreSQL outage ------------------------------------------------------


class TcpProxy:
    """A loopback TCP proxy on a free port in front of PostgreSQL: stopping it makes the database
    unreachable for the app (new and open connections alike) without touching the shared server."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self._open.clear()


@pytest.mark.postgres
def test_readyz_follows_the_store(pg_admin_url: str, tmp_path: Path, face_engine: FaceEngine) -> None:
    parts = urlsplit(pg_admin_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxy.start()
    via_proxy = urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{proxy.port}"))
    try:
        with pg_schema(via_proxy) as url:
            app = create_app(make_settings(tmp_path, url), engine=face_engine)
            api = Api(app)
            try:
                assert api.get("/readyz").status_code == 200
                proxy.stop()
                down = api.get("/readyz")
                assert down.status_code == 503 and down.json()["checks"]["store"]["ok"] is False
                assert api.get("/healthz").status_code == 200  # liveness does not depend on the store
                proxy.start()
                assert api.get("/readyz").status_code == 200
            finally:
                api.close()
                app.state.services.gallery.store.close()
    finally:
        proxy.stop()
