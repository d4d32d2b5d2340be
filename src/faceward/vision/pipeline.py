"""Bulk analysis of image files in worker processes, with a bounded queue.

dlib holds the GIL in places and is not thread-safe, so each worker process
owns its own engine; files travel in small batches (one descriptor run per
batch) and at most ``2 x workers`` batches are in flight, so memory stays flat
on folders of any size.
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
from faceward.vision.types import Face

DEFAULT_BATCH = 8  # images per worker task: descriptor batches of ~16 chips (faces and their mirrors)


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
    return analyze_batch([path], assume_centre=assume_centre)[0]


def analyze_batch(paths: list[Path], *, assume_centre: bool = False) -> list[FileResult]:
    """Analyse several files with one descriptor run for all their faces and mirror images.

    Each image is decoded once; detection, landmarks and chips run per image,
    then every chip of the batch and every mirrored chip go through the
    recognizer in a single call. ONNX Runtime gives bit-identical descriptors
    whatever the batch size (checked in the tests), so batching changes no
    result, only the cost (about 30% less CPU per face than two calls per image).
    """
    import hashlib

    assert _engine is not None
    results: list[FileResult] = []
    found: list[tuple[FileResult, list[Face]]] = []
    for path in paths:
        try:
            pixels, data = read_image_file(path, **_limits)
            faces = _engine.faces(pixels, assume_centre=assume_centre)
        except FacewardError as exc:
            results.append(FileResult(path, error=exc.message, error_code=exc.code))
            continue
        result = FileResult(path, hashlib.sha256(data).hexdigest())
        results.append(result)
        if faces:
            found.append((result, faces))
    chips = [face.chip for _, faces in found for face in faces]
    if not chips:
        return results
    runtime = _engine.embedder.runtime
    batch = np.stack(chips)
    raw_all = runtime.compute(np.concatenate([batch, batch[:, :, ::-1, :]]))
    raw, flipped = raw_all[: len(chips)], raw_all[len(chips) :]
    row = 0
    for result, faces in found:
        for face in faces:
            jittered = None
            if _jitters:
                # dlib's own jitter (small random rotation, scale, shift, mirror), as num_jitters does.
                copies = np.stack(dlib.jitter_image(np.ascontiguousarray(face.chip), _jitters))
                jittered = runtime.compute(copies).mean(axis=0)
            result.faces.append(
                FileFace(face.box.as_dict(), face.detector, face.detector_score, face.quality.as_dict(),
                         raw[row], flipped[row], jittered)
            )
            row += 1
    return results


def _task(args: tuple[list[Path], bool]) -> list[FileResult]:
    return analyze_batch(args[0], assume_centre=args[1])


def analyze_files(
    paths: Iterable[Path],
    options: EngineOptions,
    *,
    workers: int | None = None,
    assume_centre: bool = False,
    max_bytes: int = 15 * 1024 * 1024,
    max_pixels: int = 40_000_000,
    jitters: int = 0,
    batch: int = DEFAULT_BATCH,
) -> Iterator[FileResult]:
    """Yield one result per path, in input order, computed by ``workers`` processes.

    Files go to the workers ``batch`` at a time (one descriptor run per batch);
    at most ``2 x workers`` batches are in flight.
    """
    workers = workers or os.cpu_count() or 1
    batch = max(1, batch)
    limits = {"max_bytes": max_bytes, "max_pixels": max_pixels}
    chunks = _chunks(paths, batch)
    if workers == 1:
        _init(options, limits, None, jitters)
        for chunk in chunks:
            yield from analyze_batch(chunk, assume_centre=assume_centre)
        return
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_init, initargs=(options, limits, 1, jitters)) as pool:
        pending: deque[Any] = deque()
        for chunk in chunks:
            pending.append(pool.apply_async(_task, ((chunk, assume_centre),)))
            if len(pending) >= 2 * workers:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()


def _chunks(paths: Iterable[Path], size: int) -> Iterator[list[Path]]:
    chunk: list[Path] = []
    for path in paths:
        chunk.append(path)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
