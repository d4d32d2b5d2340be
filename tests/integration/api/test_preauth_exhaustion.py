"""Slow bodies and callers without a valid key cannot take the slots valid requests need (issue #12).

A real server on a real socket: 16 connections announce a multipart upload and then send it
a byte at a time. Before, each held an in-flight slot for as long as it trickled, and every
tenant got 503. Now a garbage key is refused from the headers (401, connection closed) and a
valid key's slow body is read outside the in-flight slots, in its own budget, until the read
deadline cuts it off; valid requests meanwhile keep getting 200 within a second.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from apiworld import GENEROUS, World, make_settings, make_world

from faceward.api.app import create_app
from faceward.security.permissions import Role
from faceward.vision import FaceEngine
from faceward.vision.types import Face

TRICKLERS = 16
SLOTS = 4  # fewer in-flight slots than tricklers: before the fix, all of them would be taken


@pytest.fixture()
def served(tmp_path: Path, face_engine: FaceEngine, astronaut_face: Face,
           images: dict[str, bytes]) -> Iterator[tuple[World, str]]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'faceward.db'}", max_in_flight=SLOTS,
                             body_grace_s=3.0, body_min_rate=50.0)
    app = create_app(settings, engine=face_engine, limits=GENEROUS)
    world = make_world(app, astronaut_face, images)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield world, f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        world.api.close()
        world.services.gallery.store.close()


def trickle(base: str, authorization: str, stop: threading.Event, outcomes: list[str]) -> None:
    """Announce a 200 kB upload to /v1/detect, then send it one byte every 0.3 s until told to stop."""
    port = int(base.rsplit(":", 1)[1])
    boundary = "fwboundary"
    head = (
        f"POST /v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {authorization}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 200000\r\n\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n"
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(head)
        conn.settimeout(0.3)
        answer = b""
        while not stop.is_set():
            try:
                chunk = conn.recv(4096)
                if not chunk:
                    break  # the server closed the connection
                answer += chunk
            except socket.timeout:
                pass
            except OSError:
                break  # reset: the server closed with our bytes unread
            try:
                conn.sendall(b"\xff")
            except OSError:
                break
        outcomes.append(answer.split(b"\r\n", 1)[0].decode(errors="replace") or "held open")


def served_within_a_second(base: str, world: World, seconds: float) -> list[float]:
    """Valid requests of two tenants (a list and a JSON write) for ``seconds``; their latencies."""
    latencies = []
    own, foreign = world.own.auth(Role.ENROLLER), world.foreign.auth(Role.ENROLLER)
    subject = {"display_name": "Ann", "consent": {"basis": "explicit_consent", "reference": "c-1",
                                                  "given_at": "2026-01-01T00:00:00Z"}}
    with httpx.Client(base_url=base, timeout=5) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for call in (lambda: client.get("/v1/subjects", headers=own),
                         lambda: client.post("/v1/subjects", headers=foreign,
                                             json=subject)):
                started = time.monotonic()
                response = call()
                latencies.append(time.monotonic() - started)
                assert response.status_code in (200, 201), response.text
            time.sleep(0.2)
    return latencies


def run_attack(base: str, world: World, authorization: str) -> tuple[list[float], list[str]]:
    stop, outcomes = threading.Event(), []
    threads = [threading.Thread(target=trickle, args=(base, authorization, stop, outcomes)) for _ in range(TRICKLERS)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # every trickler has sent its headers and started dripping
    try:
        latencies = served_within_a_second(base, world, 6.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    return latencies, outcomes


def test_sixteen_slow_garbage_key_uploads_do_not_starve_valid_keys(served: tuple[World, str]) -> None:
    world, base = served
    latencies, outcomes = run_attack(base, world, "Bearer fw_garbage")
    assert latencies and max(latencies) < 1.0, latencies
    # Each trickler was answered from its headers and its connection closed: none held anything.
    assert len(outcomes) == TRICKLERS and all(o.startswith("HTTP/1.1 401") for o in outcomes), outcomes


def test_a_valid_keys_own_slow_uploads_do_not_starve_valid_requests(served: tuple[World, str]) -> None:
    world, base = served
    latencies, outcomes = run_attack(base, world, world.own.auth(Role.ENROLLER)["Authorization"])
    assert latencies and max(latencies) < 1.0, latencies
    # Four are read in the key's own budget until the deadline cuts them off; the rest are refused at once.
    assert len(outcomes) == TRICKLERS
    assert sorted({o.split(" ", 2)[1] for o in outcomes}) == ["408", "503"], outcomes
    assert sum(o.startswith("HTTP/1.1 408") for o in outcomes) == 4
