"""Face analysis in worker processes, for the server.

dlib's HOG detector holds the GIL while it runs. Done inside the API process, it
stalls the event loop, so even a refusal (429, 503) waits behind someone else's
photo. Here decoding and analysis run in separate processes; the request thread
only waits on a future, which releases the GIL.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from faceward.errors import FacewardError
from faceward.vision.decode import decode_image
from faceward.vision.engine import EngineOptions, FaceEngine
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


def _warm() -> bool:
    assert _engine is not None
    _engine.load()
    return True


def _analyze(data: bytes, max_bytes: int, max_pixels: int, embed: bool) -> tuple[list[Face], tuple[int, int]]:
    assert _engine is not None
    pixels = decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    faces = _engine.analyze(pixels) if embed else _engine.faces(pixels)
    return faces, (int(pixels.shape[1]), int(pixels.shape[0]))


class RemoteEngine:
    """``workers`` processes, each with its own engine, loaded at start."""

    def __init__(self, options: EngineOptions, *, workers: int, max_bytes: int, max_pixels: int) -> None:
        self.options = options
        self.workers = workers
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self._lock = threading.Lock()
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"), initializer=_init, initargs=(self.options,))
        for _ in range(self.workers):
            pool.submit(_warm)  # models load now, not on the first request
        return pool

    def analyze(self, data: bytes, *, embed: bool = True) -> tuple[list[Face], tuple[int, int]]:
        """Decode and analyse ``data``; raises the same domain errors as doing it in-process."""
        pool = self._pool
        try:
            return pool.submit(_analyze, data, self.max_bytes, self.max_pixels, embed).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = self._start()
            raise AnalysisUnavailable("face analysis restarted; retry the request") from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
