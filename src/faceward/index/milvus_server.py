"""A Milvus standalone server on loopback, for tests, benchmarks and single-node trials.

The PyPI package ``milvus`` ships the standalone server binary with an
embedded etcd and local storage. :class:`MilvusStandalone` starts it in a data
folder of our choosing, with every component bound to 127.0.0.1 on ports the
operating system reported free just before (so parallel runs on one machine
never share a server), waits for its health check and stops it again.

This is not the production deployment (docs/deploy/ describes Milvus in
cluster mode); it is the same server code, so the index contract suite and the
scale benchmark run against a real Milvus rather than milvus-lite.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from faceward.index.milvus import MilvusError

# Every component the standalone binary runs, each told to bind loopback only
# (the default is "the first unicastable address", i.e. the machine's LAN address).
COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")
PORT_KEYS = (
    "etcd_port", "root_coord_port", "proxy_port", "proxy_internal_port", "query_coord_port",
    "query_node_port", "index_coord_port", "index_node_port", "data_coord_port", "data_node_port",
)
START_TIMEOUT_S = 120.0
# Settings faceward needs from any Milvus it talks to (docs/deploy/milvus-values.yaml sets the same).
# The query node searches rows its index does not cover yet (growing segments, and sealed ones until
# the index is handed off) through an "interim" IVF of 128 lists probed 16 at a time: measured
# recall@10 0.82 on a 100k gallery until the handoff, 0.976 at 1M (issue #14). Off, those rows are
# scanned exactly, so a face enrolled a second ago is found like any other; the cost is a brute-force
# scan of the growing segment (up to ~250k rows at the default seal size) per search.
REQUIRED_CONFIG: dict[str, Any] = {"queryNode.segcore.interimIndex.enableIndex": False}


# A watcher the server is handed to: when the process that started the server is gone without
# stopping it (a test run killed by a CI timeout, a benchmark interrupted with SIGKILL), it sends the
# server SIGTERM, then SIGKILL, so no orphaned server keeps its ports and a core busy.
_REAPER = """
import os, signal, sys, time
parent, server = int(sys.argv[1]), int(sys.argv[2])
def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
while alive(server) and os.getppid() == parent:
    time.sleep(0.5)
if alive(server) and os.getppid() != parent:
    os.kill(server, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while alive(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    if alive(server):
        os.kill(server, signal.SIGKILL)
"""


def _watch(server_pid: int) -> subprocess.Popen[bytes]:
    """Start the reaper of ``server_pid``, a child of this process (so it sees this process die)."""
    return subprocess.Popen(
        [sys.executable, "-c", _REAPER, str(os.getpid()), str(server_pid)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def milvus_server_available() -> bool:
    """Whether the ``milvus`` package (the standalone server binary) is installed."""
    import importlib.util

    return importlib.util.find_spec("milvus") is not None


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports the kernel just handed out as free on 127.0.0.1."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


class MilvusStandalone:
    """A Milvus standalone server whose data lives in ``data_dir``; use as a context manager.

    ``uri`` is what :class:`~faceward.index.milvus.MilvusIndex` connects to.
    ``extra`` adds ``section.key: value`` settings to its milvus.yaml (for
    example ``{"queryNode.segcore.chunkRows": 1024}``) on top of
    :data:`REQUIRED_CONFIG` (which it may override, to measure what that costs).
    """

    def __init__(self, data_dir: Path | str, *, extra: dict[str, Any] | None = None, keep_data: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.keep_data = keep_data
        # Seconds a SIGTERM gets before SIGKILL: Milvus flushes on SIGTERM, which a throw-away test server can skip.
        self.stop_timeout_s = 20.0
        self._extra = {**REQUIRED_CONFIG, **(extra or {})}
        self._server: Any = None
        self._reaper: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        proc = getattr(self._server, "server_proc", None)
        return None if proc is None else int(proc.pid)

    def start(self, timeout_s: float = START_TIMEOUT_S) -> MilvusStandalone:
        if not milvus_server_available():
            raise MilvusError("the Milvus standalone server needs the milvus package: pip install milvus")
        from milvus import MilvusServer, MilvusServerConfig

        config = MilvusServerConfig(data_dir=str(self.data_dir))
        ports = free_ports(len(PORT_KEYS) + 2)  # + etcd's peer port and the health endpoint
        for key, port in zip(PORT_KEYS, ports):
            config.set(key, port)
        for component in COMPONENTS:
            config.set(f"{component}.ip", "127.0.0.1")
        config.set("etcd.endpoints", f"127.0.0.1:{ports[0]}")
        # The embedded etcd reads its listen addresses from its own file, else binds localhost:2379/2380
        # (one server per machine): give it loopback ports of its own.
        etcd_file = self.data_dir / "configs" / "embed-etcd.yaml"
        etcd_file.parent.mkdir(parents=True, exist_ok=True)
        client, peer = f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[-2]}"
        etcd_file.write_text(
            f"name: default\nlisten-client-urls: {client}\nadvertise-client-urls: {client}\n"
            f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\ninitial-cluster: default={peer}\n"
        )
        config.template_text = config.template_text.replace(
            "  use:\n    embed: true", f"  config:\n    path: {etcd_file}\n  use:\n    embed: true", 1
        )
        for key, value in self._extra.items():
            config.set(key, value)
        server = MilvusServer(config, wait_for_started=False)
        server.webservice_port = ports[-1]  # its health endpoint; resolve_port keeps a free one as is
        server.start()
        self._server = server
        if self.pid is not None:
            self._reaper = _watch(self.pid)
        self.port = int(config.get("proxy_port"))
        try:
            self._wait_healthy(timeout_s)
        except MilvusError:
            self.stop()
            raise
        return self

    def _wait_healthy(self, timeout_s: float) -> None:
        url = f"http://127.0.0.1:{self._server.webservice_port}/healthz"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self._server.running:
                raise MilvusError(f"the Milvus server exited during start-up; see {self.data_dir / 'logs'}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if b"OK" in response.read():
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise MilvusError(f"the Milvus server was not healthy within {timeout_s:.0f} s; see {self.data_dir / 'logs'}")

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        proc = server.server_proc
        if proc is not None:
            proc.terminate()  # Milvus flushes and exits on SIGTERM; give it time before the kill
            try:
                proc.wait(timeout=self.stop_timeout_s)
            except Exception:
                proc.kill()
                proc.wait(timeout=10)
            server.server_proc = None
        server.stop()
        reaper, self._reaper = self._reaper, None
        if reaper is not None:
            try:
                reaper.wait(timeout=5)  # it exits once the server has
            except subprocess.TimeoutExpired:
                reaper.kill()
        if not self.keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> MilvusStandalone:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def rss_bytes(self) -> int:
        """The server process's resident memory (Linux), for benchmarks; 0 when unknown."""
        pid = self.pid
        if pid is None:
            return 0
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0


__all__ = ["REQUIRED_CONFIG", "MilvusStandalone", "free_ports", "milvus_server_available"]


if __name__ == "__main__":  # pragma: no cover - a manual check: python -m faceward.index.milvus_server DIR
    import sys

    with MilvusStandalone(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.getcwd(), "milvus-data")) as m:
        print(m.uri, flush=True)
        time.sleep(float(os.environ.get("MILVUS_HOLD_S", "5")))
