"""``faceward serve`` as a real process: refuses without a master key; with --init it serves over TCP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.net import free_port

CLI = [sys.executable, "-m", "faceward.cli.main"]


def environment(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEWARD_")}
    env.update({"FACEWARD_HOME": str(home), **extra})
    return env


@pytest.mark.parametrize("key", [None, "changeme"])
def test_refuses_to_start(tmp_path: Path, key: str | None) -> None:
    env = environment(tmp_path / "home", **({"FACEWARD_MASTER_KEY": key} if key else {}))
    done = subprocess.run([*CLI, "serve", "--port", str(free_port())], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1 and "master key" in done.stderr


def test_init_and_serve_over_tcp(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [*CLI, "serve", "--init", "--port", str(port)], env=environment(tmp_path / "home"), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert "server" not in health.headers  # no banner
        assert health.headers["x-frame-options"] == "DENY" and health.headers["cache-control"] == "no-store"
        printed = log.read_text()
        token = next(line.strip() for line in printed.splitlines() if line.strip().startswith("fw_"))
        assert f"{base}/docs" in printed and "master.key" in printed
        keys = httpx.get(f"{base}/v1/keys", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert keys.status_code == 200 and keys.json()["keys"][0]["role"] == "admin"
        assert httpx.get(f"{base}/v1/keys", timeout=5).status_code == 401
        assert httpx.get(f"{base}/openapi.json", timeout=5).json()["info"]["title"] == "faceward"
        # Without a key the gate answers 401 before any body is read (decision 014); with one, the cap is 413.
        anonymous = httpx.post(f"{base}/v1/subjects", content=b"x" * 200_000, headers={"content-type": "application/json"}, timeout=5)
        assert anonymous.status_code == 401
        big = httpx.post(
            f"{base}/v1/subjects",
            content=b"x" * 200_000,
            headers={"content-type": "application/json", "Authorization": f"Bearer {token}"},
            timeout=5,
        )
        assert big.status_code == 413
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_is_quiet_and_leaks_nothing(tmp_path: Path, stop: signal.Signals) -> None:
    """Stopped (a service manager's SIGTERM, or Ctrl-C) once its analysis workers are up, the server shuts
    down gracefully and prints no warning: no "leaked semaphore objects" from multiprocessing's resource tracker (#12)."""
    port = free_port()
    log = tmp_path / "serve.log"
    env = environment(tmp_path / "home", FACEWARD_ANALYSIS_WORKERS="2", FACEWARD_LOG_FORMAT="text")
    with log.open("w") as out:
        process = subprocess.Popen([*CLI, "serve", "--init", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:  # ready = the workers have loaded their models (the pool and its queues exist)
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        process.send_signal(stop)
        # uvicorn shuts down gracefully, then re-raises the signal: dying by it is the conventional exit
        assert process.wait(timeout=60) in (0, -stop), log.read_text()
        # The resource tracker speaks after the server is gone: wait for every process of the session to end.
        deadline = time.monotonic() + 30
        while _group_alive(process.pid):
            assert time.monotonic() < deadline, "processes of the server outlived it"
            time.sleep(0.2)
    finally:
        if process.poll() is None:
            process.kill()
    printed = log.read_text()
    assert "leaked" not in printed and "resource_tracker" not in printed and "Traceback" not in printed, printed[-3000:]
    assert "Application shutdown complete" in printed and "Warning" not in printed, printed[-3000:]
