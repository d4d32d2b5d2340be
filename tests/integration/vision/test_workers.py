"""Analysis workers die with the process that started them (a SIGKILLed server leaves no orphans)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

PARENT = """
import sys, time
from faceward.vision.engine import EngineOptions
from faceward.vision.remote import RemoteEngine
engine = RemoteEngine(EngineOptions(), workers=1, max_bytes=1000, max_pixels=1000)
pid = engine._pool.submit(__import__("os").getpid).result()
print(pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:  # a zombie is gone for our purpose
        return handle.read().split()[2] != "Z"


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to watch processes")
def test_worker_exits_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    assert alive(worker)
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(worker)
