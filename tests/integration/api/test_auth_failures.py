"""Floods of failed authentications are throttled (429 + Retry-After) and audited as a bounded digest (#12)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from apiworld import GENEROUS, World, make_settings, make_world

from faceward.api.app import create_app
from faceward.security.apikeys import new_token
from faceward.security.permissions import Role
from faceward.vision import FaceEngine
from faceward.vision.types import Face

TRIES = 200


@pytest.fixture()
def throttled_world(tmp_path: Path, face_engine: FaceEngine, astronaut_face: Face,
                    images: dict[str, bytes]) -> Iterator[World]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'faceward.db'}", auth_failures_per_minute=10)
    w = make_world(create_app(settings, engine=face_engine, limits=GENEROUS), astronaut_face, images)
    try:
        yield w
    finally:
        w.api.close()
        w.services.gallery.store.close()


def failure_entries(w: World) -> list[dict[str, object]]:
    return [e.details for e in w.services.audit.entries(w.own.id, action="auth.failure", limit=1000)]


def wrong_secret(token: str) -> str:
    return token[:-43] + ("A" if token[-43] != "A" else "B") + token[-42:]


def test_wrong_secrets_for_one_key_id_are_throttled_and_audited_as_a_digest(throttled_world: World) -> None:
    w = throttled_world
    good = w.own.tokens[Role.ENROLLER]
    before = len(w.services.audit.entries(w.own.id, limit=1000))
    statuses = []
    for _ in range(TRIES):
        response = w.api.get("/v1/subjects", headers={"Authorization": f"Bearer {wrong_secret(good)}"})
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["error"]["code"] == "rate_limited"
    assert 10 <= statuses.count(401) <= 15 and statuses.count(429) == TRIES - statuses.count(401)
    assert len(failure_entries(w)) == 1  # the first at once; the rest wait for their window to close
    w.services.accounts.flush_failures(everything=True)  # what the server does every few seconds and at shutdown
    entries = failure_entries(w)
    after = len(w.services.audit.entries(w.own.id, limit=1000))
    assert len(entries) == 2 and after - before == 2
    assert [e["count"] for e in entries] == [1, TRIES - 1]
    assert entries[1]["reasons"] == {"wrong secret": TRIES - 1} and entries[1]["throttled"] == statuses.count(429)
    assert entries[1]["sources"] == ["api:127.0.0.1"]
    assert w.services.audit.verify(w.own.id).ok
    # The key's holder is not locked out by someone naming its key id.
    assert w.api.get("/v1/subjects", headers=w.own.auth(Role.ENROLLER)).status_code == 200


def test_console_sign_in_floods_are_throttled_and_audited_as_a_digest(throttled_world: World) -> None:
    w = throttled_world
    # 150 random keys (unknown key ids: no tenant to audit under) from one address.
    random = [w.api.post("/console/session", json={"api_key": str(new_token())}).status_code for _ in range(150)]
    assert 30 <= random.count(401) <= 40 and random.count(429) == 150 - random.count(401)  # address budget: 3 x 10
    refused = w.api.post("/console/session", json={"api_key": str(new_token())})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    # A real key still signs in from that address.
    assert w.api.post("/console/session", json={"api_key": w.own.tokens[Role.SEARCHER]}).status_code == 201

    good = w.own.tokens[Role.AUDITOR]
    tries = [w.api.post("/console/session", json={"api_key": wrong_secret(good)}).status_code for _ in range(TRIES)]
    assert tries.count(429) >= TRIES - 10  # the address is still past its budget (a few tokens refill meanwhile)
    w.services.accounts.flush_failures(everything=True)
    entries = [e for e in failure_entries(w) if e["key_id"] == w.own.key_ids[Role.AUDITOR]]
    assert [e["count"] for e in entries] == [1, TRIES - 1]
    assert entries[1]["throttled"] == tries[1:].count(429) and entries[1]["sources"] == ["api:127.0.0.1"]
