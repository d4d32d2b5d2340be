"""Crash safety: the real server is SIGKILLed at least three times while clients enroll and search (#7).

``faceward serve`` runs in a subprocess on 127.0.0.1 (free port, temporary
FACEWARD_HOME, SQLite). Enrollment threads send distinct photos (variants of
scikit-image's astronaut: different crops, brightness and JPEG quality, so
every image's SHA-256 differs) and retry whatever was in flight when the
server died; a search thread runs throughout. After the last restart every
acknowledged (2xx) enrollment must be stored, with no orphan and no duplicate,
and ``faceward doctor --json`` must report ok.
"""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.net import free_port

pytestmark = pytest.mark.slow

SUBJECTS = 8
IMAGES = 240
MIN_ACKS = 200
KILLS = (40, 95, 150)  # acknowledged enrollments at which the server is killed
ENROLLERS = 3


def variants(astronaut: np.ndarray, count: int) -> list[bytes]:
    """``count`` distinct JPEGs of the same face: shifted crops, brightness and quality."""
    out: list[bytes] = []
    seen: set[bytes] = set()
    rng = np.random.default_rng(7)
    height, width = astronaut.shape[:2]
    while len(out) < count:
        dx, dy = (int(v) for v in rng.integers(0, 24, size=2))
        crop = astronaut[dy : height - 24 + dy, dx : width - 24 + dx].astype(np.int16)
        pixels = np.clip(crop + int(rng.integers(-25, 26)), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(rng.integers(80, 96)))
        data = buffer.getvalue()
        if data not in seen:
            seen.add(data)
            out.append(data)
    return out


class Server:
    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"
        self.kills = 0

    def start(self, *, init: bool = False) -> str:
        args = [sys.executable, "-m", "faceward.cli.main", "serve", "--port", str(self.port)] + (["--init"] if init else [])
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, env=self.env, stdout=subprocess.PIPE if init else log, stderr=log,
                                         start_new_session=True)
        key = ""
        if init:
            assert self.proc.stdout is not None
            for raw in self.proc.stdout:
                line = raw.decode().strip()
                if line.startswith("fw_"):
                    key = line
                    break
            threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # keep the pipe drained
        self.wait_ready()
        return key

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError("the server did not come up")

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@dataclass
class Tally:
    acked: dict[str, tuple[str, str]] = field(default_factory=dict)  # image sha -> (subject, face id)
    refused: int = 0
    retried: int = 0
    searches: int = 0
    search_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture()
def server(home: Path, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    env = dict(os.environ)
    env.update({
        "FACEWARD_RATE_PER_MINUTE": "1000000", "FACEWARD_RATE_BURST": "100000", "FACEWARD_SEARCHES_PER_DAY": "1000000",
        "PYTHONUNBUFFERED": "1",
    })
    srv = Server(env, free_port(), tmp_path / "server.log")
    key = srv.start(init=True)
    assert key, srv.log.read_text()[-3000:]
    yield srv, key
    srv.stop()


def test_sigkilled_server_loses_no_acknowledged_enrollment(
    server: tuple[Server, str], astronaut: np.ndarray, astronaut_probe: bytes, home: Path
) -> None:
    srv, admin_key = server
    started = time.monotonic()
    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30.0) as admin:
        secrets = {}
        for role in ("enroller", "searcher"):
            response = admin.post("/v1/keys", json={"role": role, "label": f"crash test {role}"})
            assert response.status_code == 201, response.text
            secrets[role] = response.json()["secret"]
    headers = {"Authorization": f"Bearer {secrets['enroller']}"}
    search_headers = {"Authorization": f"Bearer {secrets['searcher']}"}
    with httpx.Client(base_url=srv.url, headers=headers, timeout=30.0) as client:
        subjects = []
        for n in range(SUBJECTS):
            body = {"display_name": f"Subject {n}",
                    "consent": {"basis": "explicit_consent", "reference": f"form-{n}", "given_at": datetime.now(timezone.utc).isoformat()}}
            response = client.post("/v1/subjects", json=body)
            assert response.status_code == 201, response.text
            subjects.append(response.json()["id"])

    images = variants(astronaut, IMAGES)
    work: queue.Queue[tuple[int, bytes]] = queue.Queue()
    for n, data in enumerate(images):
        work.put((n, data))
    tally = Tally()
    done = threading.Event()

    def enroller() -> None:
        with httpx.Client(base_url=srv.url, headers=headers, timeout=30.0) as client:
            while True:
                try:
                    n, data = work.get_nowait()
                except queue.Empty:
                    return
                subject = subjects[n % SUBJECTS]
                try:
                    response = client.post(f"/v1/subjects/{subject}/faces", files={"image": (f"{n}.jpg", data, "image/jpeg")})
                except httpx.HTTPError:
                    response = None
                if response is not None and response.status_code in (200, 201):
                    face = response.json()
                    with tally.lock:
                        tally.acked[face["image_sha256"]] = (subject, face["id"])
                elif response is not None and response.status_code == 422:
                    with tally.lock:
                        tally.refused += 1
                else:  # the server died (or is starting): send it again later
                    with tally.lock:
                        tally.retried += 1
                    work.put((n, data))
                    time.sleep(0.2)

    def searcher() -> None:
        with httpx.Client(base_url=srv.url, headers=search_headers, timeout=30.0) as client:
            while not done.is_set():
                try:
                    response = client.post("/v1/search", files={"image": ("probe.jpg", astronaut_probe, "image/jpeg")},
                                           data={"purpose": "crash test", "case_reference": "case-1", "k": "3"})
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                with tally.lock:
                    if ok:
                        tally.searches += 1
                    else:
                        tally.search_errors += 1
                time.sleep(0.05 if ok else 0.1)

    threads = [threading.Thread(target=enroller) for _ in range(ENROLLERS)]
    search_thread = threading.Thread(target=searcher)
    for thread in threads + [search_thread]:
        thread.start()
    try:
        for threshold in KILLS:
            while len(tally.acked) < threshold and any(t.is_alive() for t in threads):
                assert time.monotonic() - started < 240, "too slow"
                time.sleep(0.01)
            srv.kill()  # mid-flight: requests in progress get no answer
            time.sleep(0.2)
            srv.start()
        for thread in threads:
            thread.join(240)
            assert not thread.is_alive()
    finally:
        done.set()
        search_thread.join(60)

    print(f"kills={srv.kills} acknowledged={len(tally.acked)} refused={tally.refused} resent={tally.retried} "
          f"searches={tally.searches} search_errors={tally.search_errors} seconds={time.monotonic() - started:.1f}")
    assert srv.kills >= 3 and len(tally.acked) >= MIN_ACKS, (srv.kills, len(tally.acked), tally)
    assert tally.searches > 0
    assert tally.retried > 0  # some requests were cut off by a kill and sent again

    # After the last restart: every acknowledged face is there, through the API and in the store.
    with httpx.Client(base_url=srv.url, headers=headers, timeout=30.0) as client:
        held: dict[str, set[str]] = {}
        for subject in subjects:
            response = client.get(f"/v1/subjects/{subject}")
            assert response.status_code == 200
            held[subject] = {face["id"] for face in response.json()["faces"]}
        for sha, (subject, face_id) in tally.acked.items():
            assert face_id in held[subject], f"acknowledged face {face_id} ({sha[:12]}) is missing"
        result = client.post("/v1/search", headers=search_headers, files={"image": ("probe.jpg", astronaut_probe, "image/jpeg")},
                             data={"purpose": "crash test", "case_reference": "case-1", "k": "10"})
        assert result.status_code == 200 and len(result.json()["candidates"]) == SUBJECTS

    import sqlite3

    conn = sqlite3.connect(home / "faceward.db")
    try:
        orphans = conn.execute("SELECT count(*) FROM faces f LEFT JOIN subjects s ON s.id = f.subject_id WHERE s.id IS NULL").fetchone()[0]
        duplicates = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM faces GROUP BY subject_id, image_sha256 HAVING count(*) > 1)").fetchone()[0]
        stored = {row[0] for row in conn.execute("SELECT image_sha256 FROM faces")}
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    assert (orphans, duplicates, integrity) == (0, 0, "ok")
    assert len(stored) >= len(tally.acked)  # stored digests are keyed (#12); the ids were checked above

    doctor = subprocess.run([sys.executable, "-m", "faceward.cli.main", "doctor", "--json"], env=srv.env,
                            capture_output=True, text=True, timeout=120)
    report = json.loads(doctor.stdout)
    assert doctor.returncode == 0 and report["ok"], report
    assert report["checks"]["faces"]["checked"] >= len(tally.acked) and report["checks"]["faces"]["orphans"] == 0
    assert time.monotonic() - started < 240
