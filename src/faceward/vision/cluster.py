"""Bulk analysis on a Ray cluster: ``faceward enroll DIR --ray ADDRESS``.

The driver (the process that runs ``faceward enroll``) reads each file and
sends its bytes to Ray actors; each actor holds one face engine, loaded once,
and returns what :func:`faceward.vision.pipeline.analyze_batch` returns for a
local file: descriptors, quality and the file's SHA-256, or the same error. It
never sees a key, the store or a template sealed or opened: the driver alone
admits faces through the enrollment use case, so the refusal report and the
exactly-once guarantee (one face per subject and image hash) are those of local
enrollment.

A killed actor is restarted by Ray and its unfinished batches are retried
(analysis is pure, so a retry changes nothing); at most ``2 x actors`` batches
are in flight, so memory stays flat on any folder. Ray is an optional
dependency (``pip install 'faceward[ray]'``), imported only here.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from faceward.errors import ConfigError
from faceward.vision.engine import EngineOptions
from faceward.vision.pipeline import DEFAULT_BATCH, FileResult, _chunks
from faceward.vision.subject import Embed, EmbedChoice

ACTOR_CPUS = 1.0
# Seconds to reach the head before giving up. ray.init itself retries an unreachable GCS for minutes
# with nothing on screen; a plain TCP connect first answers in seconds with one line.
CONNECT_TIMEOUT_S = 10.0


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise :class:`ConfigError` (one line) unless something accepts TCP connections at ``address``.

    ``host:port`` (the GCS) and ``ray://host:port`` (Ray Client) are probed; ``auto`` and an address
    without a port are left to ``ray.init``.
    """
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise ConfigError(f"cannot reach the Ray head at {address} within {timeout_s:.0f} s: {reason}") from None


class _Analyst:
    """One Ray actor: a face engine, loaded once, analysing batches of file bytes."""

    def __init__(self, options: EngineOptions, limits: dict[str, int]) -> None:
        from faceward.vision import pipeline

        pipeline._init(options, limits, 1)  # as a local worker process does: one engine, one thread
        pipeline.warm()

    def analyze(
        self, paths: list[Path], contents: list[bytes], assume_centre: bool, embed: EmbedChoice = Embed.ALL,
    ) -> list[FileResult]:
        from faceward.vision.pipeline import analyze_batch

        return analyze_batch(paths, assume_centre=assume_centre, contents=contents, embed=embed)

    def pid(self) -> int:
        return os.getpid()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""  # the actor reports it as an empty image, as a local read that fails does


class RayAnalyzer:
    """Actors on the Ray cluster at ``address``; :meth:`analyze` yields results in input order.

    ``actors`` defaults to one per CPU the cluster offers. Use as a context manager: the
    driver connects on enter and disconnects on exit (the cluster keeps running).
    """

    def __init__(
        self,
        address: str,
        options: EngineOptions,
        *,
        actors: int | None = None,
        max_bytes: int = 15 * 1024 * 1024,
        max_pixels: int = 40_000_000,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        self.address = address
        self.options = options
        self.actors = actors
        self.batch = max(1, batch)
        self.limits = {"max_bytes": max_bytes, "max_pixels": max_pixels}
        self.connect_timeout_s = CONNECT_TIMEOUT_S
        self._handles: list[Any] = []
        self._ray: Any = None
        # Ray prints worker failures and retries on the driver's stdout; stdout is the command's
        # (``--json``) output, so while connected they go to stderr with the progress bar.
        self._quiet = contextlib.redirect_stdout(sys.stderr)

    def __enter__(self) -> RayAnalyzer:
        host = self.address.rsplit(":", 1)[0]
        if host in ("127.0.0.1", "localhost", "::1", "[::1]"):
            # A head on loopback is a one-machine cluster: Ray would otherwise swap "127.0.0.1" for the
            # machine's LAN address, where such a head does not listen (read when ray is imported).
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("--ray needs Ray: pip install 'faceward[ray]'") from exc
        check_reachable(self.address, self.connect_timeout_s)
        try:
            ray.init(address=self.address, log_to_driver=False, logging_level="ERROR")  # type: ignore[arg-type]
        except Exception as exc:  # ConnectionError, RuntimeError: no cluster there
            raise ConfigError(f"cannot join the Ray cluster at {self.address}: {exc}") from exc
        self._ray = ray
        self._quiet.__enter__()
        count = self.actors or max(
            1, int(ray.cluster_resources().get("CPU", 1) // ACTOR_CPUS),  # type: ignore[no-untyped-call]
        )
        remote = ray.remote(num_cpus=ACTOR_CPUS, max_restarts=-1, max_task_retries=-1)(_Analyst)
        self._handles = [remote.remote(self.options, self.limits) for _ in range(count)]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ray is not None:
            for handle in self._handles:
                self._ray.kill(handle)
            self._handles = []
            self._ray.shutdown()
            self._ray = None
            self._quiet.__exit__(None, None, None)

    def pids(self) -> list[int]:
        """The actors' process ids (for tests that kill one)."""
        return [int(pid) for pid in self._ray.get([h.pid.remote() for h in self._handles])]

    def analyze(
        self, paths: Sequence[Path], *, assume_centre: bool = False, embed: EmbedChoice = Embed.ALL,
    ) -> Iterator[FileResult]:
        """One result per path, in input order; descriptors on the faces ``embed`` picks, as locally."""
        pending: deque[Any] = deque()
        workers = len(self._handles)
        for i, chunk in enumerate(_chunks(list(paths), self.batch, workers)):
            actor = self._handles[i % workers]
            pending.append(actor.analyze.remote(chunk, [_read(p) for p in chunk], assume_centre, embed))
            if len(pending) >= 2 * workers:
                yield from self._ray.get(pending.popleft())
        while pending:
            yield from self._ray.get(pending.popleft())


__all__ = ["CONNECT_TIMEOUT_S", "RayAnalyzer", "check_reachable"]
