"""Bulk analysis of image files in worker processes, with a bounded queue.

dlib holds the GIL in places and is not thread-safe, so each worker process
owns its own engine; at most ``2 x workers`` images are in flight, so memory
stays flat on folders of any size.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import dlib
import numpy as np

from faceward.errors import FacewardError
from faceward.vision.decode import read_image_file
from faceward.vision.engine import EngineOptions, FaceEngine


@dataclass
class FileFace:
    box: dict[str, int]
    detector: str
    detector_score: float
    quality: dict[str, float]
    raw: np.ndarray  # un-normalised descriptor of the chip
    raw_flipped: np.ndarray  # ... and of its mirror image
    raw_jittered: np.ndarray | None = None  # mean of dlib.jitter_image copies, when asked for


@dataclass
class FileResult:
    path: Path
    sha256: str = ""
    faces: list[FileFace] = field(default_factory=list)
    error: str | None = None
    error_code: str | None = None


_engine: FaceEngine | None = None
_limits: dict[str, int] = {}
_jitters = 0


def _init(options: EngineOptions, limits: dict[str, int], threads: int | None, jitters: int = 0) -> None:
    global _engine, _limits, _jitters
    _jitters = jitters
    _engine = FaceEngine(replace(options, threads=threads) if threads else options)
    _limits = limits


def analyze_file(path: Path, *, assume_centre: bool = False) -> FileResult:
    import hashlib

    assert _engine is not None
    try:
        pixels, data = read_image_file(path, **_limits)  # type: ignore[arg-type]
        faces = _engine.faces(pixels, assume_centre=assume_centre)
        result = FileResult(path, hashlib.sha256(data).hexdigest())
        if faces:
            chips = np.stack([f.chip for f in faces])
            runtime = _engine.embedder.runtime
            raw = runtime.compute(chips)
            flipped = runtime.compute(np.ascontiguousarray(chips[:, :, ::-1, :]))
            for face, r, fl in zip(faces, raw, flipped):
                jittered = None
                if _jitters:
                    # dlib's own jitter (small random rotation, scale, shift, mirror), as num_jitters does.
                    copies = np.stack(dlib.jitter_image(np.ascontiguousarray(face.chip), _jitters))
                    jittered = runtime.compute(copies).mean(axis=0)
                result.faces.append(
                    FileFace(face.box.as_dict(), face.detector, face.detector_score, face.quality.as_dict(), r, fl, jittered)
                )
        return result
    except FacewardError as exc:
        return FileResult(path, error=exc.message, error_code=exc.code)


def _task(args: tuple[Path, bool]) -> FileResult:
    return analyze_file(args[0], assume_centre=args[1])


def analyze_files(
    paths: Iterable[Path],
    options: EngineOptions,
    *,
    workers: int | None = None,
    assume_centre: bool = False,
    max_bytes: int = 15 * 1024 * 1024,
    max_pixels: int = 40_000_000,
    jitters: int = 0,
) -> Iterator[FileResult]:
    """Yield one result per path, in input order, computed by ``workers`` processes."""
    workers = workers or os.cpu_count() or 1
    limits = {"max_bytes": max_bytes, "max_pixels": max_pixels}
    if workers == 1:
        _init(options, limits, None, jitters)
        for path in paths:
            yield analyze_file(path, assume_centre=assume_centre)
        return
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_init, initargs=(options, limits, 1, jitters)) as pool:
        pending: deque[Any] = deque()
        for path in paths:
            pending.append(pool.apply_async(_task, ((path, assume_centre),)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
