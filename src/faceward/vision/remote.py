"""Face analysis in worker processes, for the server.

dlib's HOG detector holds the GIL while it runs. Done inside the API process, it
stalls the event loop, so even a refusal (429, 503) waits behind someone else's
photo. Here decoding and analysis run in separate processes; the request thread
only waits on a future, which releases the GIL.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from faceward.errors import FacewardError
from faceward.vision.engine import EngineOptions, FaceEngine
from faceward.vision.scheduling import FairScheduler
from faceward.vision.subject import Embed, EmbedChoice
from faceward.vision.types import Face
from faceward.vision.workers import exit_with_parent


class AnalysisUnavailable(FacewardError):
    """A worker process died (e.g. killed for memory); the pool is rebuilt and the client may retry."""

    code = "analysis_unavailable"
    status = 503


_engine: FaceEngine | None = None


def _init(options: EngineOptions) -> None:
    global _engine
    exit_with_parent()
    _engine = FaceEngine(options)


def _warm() -> float:
    """Load the worker's models; returns the seconds it took (the metrics' model load time)."""
    assert _engine is not None
    _engine.load()
    return _engine.load_seconds or 0.0


def _analyze(data: bytes, max_bytes: int, max_pixels: int, embed: EmbedChoice) -> tuple[list[Face], tuple[int, int]]:
    assert _engine is not None
    return _engine.read(data, max_bytes=max_bytes, max_pixels=max_pixels, embed=embed)


def _analyze_timed(data: bytes, max_bytes: int, max_pixels: int, embed: EmbedChoice) -> tuple[float, tuple[list[Face], tuple[int, int]]]:
    """:func:`_analyze`, with the wall-clock moment the worker took the image (its queue wait ends there)."""
    return time.time(), _analyze(data, max_bytes, max_pixels, embed)


class RemoteEngine:
    """``workers`` processes, each with its own engine, loaded at start, shared fairly between tenants.

    At most ``per_tenant`` analyses of one tenant run at once (default: all
    workers but one, so another tenant always finds one free) and at most
    ``queue_per_tenant`` wait; tenants take turns (:class:`FairScheduler`).
    """

    def __init__(
        self, options: EngineOptions, *, workers: int, max_bytes: int, max_pixels: int,
        per_tenant: int | None = None, queue_per_tenant: int = 8,
    ) -> None:
        self.options = options
        self.workers = workers
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.scheduler = FairScheduler(
            workers, per_tenant=per_tenant or max(1, workers - 1), queue_per_tenant=queue_per_tenant
        )
        self._lock = threading.Lock()
        self._count = threading.Lock()
        self.pending = 0  # images submitted and not answered yet: the analysis queue's depth
        self.load_seconds: list[float] = []  # each worker's model load time, as workers report it
        self.on_wait: Callable[[float], None] | None = None  # told each image's wait for a free worker
        self._warming: list[Future[float]] = []
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"), initializer=_init, initargs=(self.options,))
        # Models load now, not on the first request.
        self._warming = [pool.submit(_warm) for _ in range(self.workers)]
        for future in self._warming:
            future.add_done_callback(self._loaded)
        return pool

    def _loaded(self, future: Future[float]) -> None:
        if not future.cancelled() and future.exception() is None:
            self.load_seconds.append(future.result())

    def ready(self) -> bool:
        """Every worker has loaded and verified its models."""
        warming = self._warming
        return all(f.done() and not f.cancelled() and f.exception() is None for f in warming)

    def analyze(self, data: bytes, *, embed: EmbedChoice = Embed.ALL, tenant: str = "") -> tuple[list[Face], tuple[int, int]]:
        """Decode and analyse ``data`` in ``tenant``'s turn; raises the same domain errors as doing it
        in-process, and :class:`AnalysisBusy` (503) when the tenant already has too much waiting."""
        with self.scheduler.slot(tenant):
            return self._run(data, embed)

    def _run(self, data: bytes, embed: EmbedChoice) -> tuple[list[Face], tuple[int, int]]:
        pool = self._pool
        submitted = time.time()  # wall clock: the worker stamps its start with the same machine's clock
        with self._count:
            self.pending += 1
        try:
            started, result = pool.submit(_analyze_timed, data, self.max_bytes, self.max_pixels, embed).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = self._start()
            raise AnalysisUnavailable("face analysis restarted; retry the request") from None
        finally:
            with self._count:
                self.pending -= 1
        if self.on_wait is not None:
            self.on_wait(max(0.0, started - submitted))
        return result

    def close(self) -> None:
        """Stop the workers and wait for them: queued analyses are cancelled, running ones finish.

        Waiting matters: a pool left to wind down on its own still holds its queues' semaphores
        when the interpreter exits, and multiprocessing's resource tracker then warns that it
        found leaked semaphore objects (#12: printed at every ``faceward serve`` shutdown).
        """
        self._pool.shutdown(wait=True, cancel_futures=True)
