"""Bulk analysis of image files in worker processes, with a bounded queue.

dlib holds the GIL in places and is not thread-safe, so each worker process
owns its own engine; files travel in small batches (one descriptor run per
batch) and at most ``2 x workers`` batches are in flight, so memory stays flat
on folders of any size.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import dlib
import numpy as np

from faceward.errors import FacewardError
from faceward.vision.decode import decode_file_reduced, read_file_bytes
from faceward.vision.engine import EngineOptions, FaceEngine
from faceward.vision.embed import templates, with_mirrors
from faceward.vision.scale import ANALYSIS_SIDE
from faceward.vision.subject import Embed, EmbedChoice, to_embed
from faceward.vision.types import Face, Quality
from faceward.vision.workers import exit_with_parent

DEFAULT_BATCH = 4  # images per worker task: descriptor runs of ~8 chips (faces and mirrors); small tail


@dataclass
class FileFace:
    box: dict[str, int]
    detector: str
    detector_score: float
    quality: dict[str, float]
    raw: np.ndarray | None  # un-normalised descriptor of the chip; None for a face the act does not use
    raw_flipped: np.ndarray | None  # ... and of its mirror image
    raw_jittered: np.ndarray | None = None  # mean of dlib.jitter_image copies, when asked for
    measured: Quality | None = None  # the quality figures unrounded, as the enrollment gate reads them

    def template(self, flip_average: bool) -> np.ndarray:
        """This face's template, exactly as :class:`~faceward.vision.embed.Embedder` makes it in process."""
        if self.raw is None or self.raw_flipped is None:
            raise ValueError("this face was not embedded (not the one the analysis was asked for)")
        flipped = self.raw_flipped[None, :] if flip_average else None
        return cast(np.ndarray, templates(self.raw[None, :].astype(np.float32), flipped)[0])


@dataclass
class FileResult:
    path: Path
    sha256: str = ""
    faces: list[FileFace] = field(default_factory=list)
    error: str | None = None
    error_code: str | None = None
    size: tuple[int, int] | None = None  # the upright image's (width, height), the frame of the faces' boxes


_engine: FaceEngine | None = None
_limits: dict[str, int] = {}
_jitters = 0


def _init(options: EngineOptions, limits: dict[str, int], threads: int | None, jitters: int = 0) -> None:
    global _engine, _limits, _jitters
    exit_with_parent()
    _jitters = jitters
    _engine = FaceEngine(replace(options, threads=threads) if threads else options)
    _limits = limits


def analyze_file(path: Path, *, assume_centre: bool = False, embed: EmbedChoice = Embed.ALL) -> FileResult:
    return analyze_batch([path], assume_centre=assume_centre, embed=embed)[0]


def analyze_batch(
    paths: list[Path], *, assume_centre: bool = False, contents: list[bytes] | None = None,
    embed: EmbedChoice = Embed.ALL,
) -> list[FileResult]:
    """Analyse several files with one descriptor run for all their faces and mirror images.

    Each image is decoded once, reduced as an upload is (:meth:`FaceEngine.read`); detection, landmarks and chips run per image,
    then every chip of the batch and every mirrored chip go through the
    recognizer in a single call. ONNX Runtime gives bit-identical descriptors
    whatever the batch size (checked in the tests), so batching changes no
    result, only the cost (about 30% less CPU per face than two calls per image).
    ``contents`` are the files' bytes when another machine read them (a Ray driver). Only the faces
    ``embed`` picks get descriptors (:func:`~faceward.vision.subject.to_embed`): enrollment asks for its
    subject alone, so no bystander's template is made (decision 038); the others keep box and quality.
    """
    import hashlib

    assert _engine is not None
    results: list[FileResult] = []
    found: list[tuple[FileResult, list[Face], list[int]]] = []
    for i, path in enumerate(paths):
        try:
            data = read_file_bytes(path, max_bytes=_limits["max_bytes"]) if contents is None else contents[i]
            # The same reduced decode as an upload's (one analysis path): a phone photo is not decoded whole.
            decoded = decode_file_reduced(path, data, **_limits, min_long_side=ANALYSIS_SIDE)
            faces = _engine.faces(decoded.pixels, assume_centre=assume_centre, reduction=decoded.reduction)
        except FacewardError as exc:
            results.append(FileResult(path, error=exc.message, error_code=exc.code))
            continue
        result = FileResult(path, hashlib.sha256(data).hexdigest(), size=decoded.size)
        results.append(result)
        if faces:
            found.append((result, faces, to_embed([f.box for f in faces], decoded.size, embed)))
    chips = [faces[i].chip for _, faces, chosen in found for i in chosen]
    runtime = _engine.embedder.runtime
    raw, flipped = with_mirrors(runtime, np.stack(chips)) if chips else (None, None)
    row = 0
    for result, faces, chosen in found:
        for i, face in enumerate(faces):
            if i not in chosen or raw is None or flipped is None:
                result.faces.append(FileFace(face.box.as_dict(), face.detector, face.detector_score,
                                             face.quality.as_dict(), None, None, None, face.quality))
                continue
            jittered = None
            if _jitters:
                # dlib's own jitter (small random rotation, scale, shift, mirror), as num_jitters does.
                copies = np.stack(dlib.jitter_image(np.ascontiguousarray(face.chip), _jitters))
                jittered = runtime.compute(copies).mean(axis=0)
            result.faces.append(
                FileFace(face.box.as_dict(), face.detector, face.detector_score, face.quality.as_dict(),
                         raw[row], flipped[row], jittered, face.quality)
            )
            row += 1
    return results


def _task(args: tuple[list[Path], bool, EmbedChoice]) -> list[FileResult]:
    return analyze_batch(args[0], assume_centre=args[1], embed=args[2])


def warm() -> int:
    """Load this process's models now (HOG, landmarks, recognizer, and MMOD when it may run); returns the pid."""
    assert _engine is not None
    _engine.load()
    return os.getpid()


def _warm_task(pause: float) -> int:
    pid = warm()
    time.sleep(pause)  # keep this worker busy so that the next warm task goes to another one
    return pid


class Analyzer:
    """Worker processes that analyse image files; :meth:`analyze` yields results in input order.

    Use as a context manager. With one worker everything runs in this process.
    Files go to the workers ``batch`` at a time (one descriptor run per batch);
    at most ``2 x workers`` batches are in flight.
    """

    def __init__(
        self,
        options: EngineOptions,
        *,
        workers: int | None = None,
        max_bytes: int = 15 * 1024 * 1024,
        max_pixels: int = 40_000_000,
        jitters: int = 0,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.batch = max(1, batch)
        self._init_args = (options, {"max_bytes": max_bytes, "max_pixels": max_pixels}, 1, jitters)
        self._pool: Any = None

    def __enter__(self) -> Analyzer:
        options, limits, threads, jitters = self._init_args
        if self.workers == 1:
            _init(options, limits, None, jitters)
        else:
            ctx = mp.get_context("spawn")
            self._pool = ctx.Pool(self.workers, initializer=_init, initargs=(options, limits, threads, jitters))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids (this process's when it works alone)."""
        if self._pool is None:
            return [os.getpid()]
        return [proc.pid for proc in self._pool._pool]

    def warm(self, *, pause: float = 0.05, attempts: int = 20) -> None:
        """Load every worker's models before timing anything (model loading is not throughput)."""
        if self._pool is None:
            warm()
            return
        seen: set[int] = set()
        for _ in range(attempts):
            seen.update(self._pool.map(_warm_task, [pause] * self.workers, chunksize=1))
            if len(seen) >= self.workers:
                return

    def analyze(
        self, paths: Iterable[Path], *, assume_centre: bool = False, embed: EmbedChoice = Embed.ALL,
    ) -> Iterator[FileResult]:
        """One result per path, in input order; descriptors on the faces ``embed`` picks (see :func:`analyze_batch`)."""
        chunks = _chunks(paths, self.batch, self.workers)
        if self._pool is None:
            for chunk in chunks:
                yield from analyze_batch(chunk, assume_centre=assume_centre, embed=embed)
            return
        pending: deque[Any] = deque()
        for chunk in chunks:
            pending.append(self._pool.apply_async(_task, ((chunk, assume_centre, embed),)))
            if len(pending) >= 2 * self.workers:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()


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
    embed: EmbedChoice = Embed.ALL,
) -> Iterator[FileResult]:
    """Yield one result per path, in input order, computed by ``workers`` processes (see :class:`Analyzer`)."""
    with Analyzer(options, workers=workers, max_bytes=max_bytes, max_pixels=max_pixels, jitters=jitters, batch=batch) as analyzer:
        yield from analyzer.analyze(paths, assume_centre=assume_centre, embed=embed)


def _chunks(paths: Iterable[Path], size: int, workers: int = 1) -> Iterator[list[Path]]:
    """Batches of ``size`` paths; for a list, batches shrink towards the end (guided scheduling).

    Equal batches leave one worker finishing the last batch alone while the others
    idle: on a 50-image job with two workers that was ~7% of the wall time. Batches
    of ``ceil(remaining / (2 x workers))`` (at most ``size``) end the job within one image.
    """
    if workers > 1 and isinstance(paths, Sequence):
        at = 0
        while at < len(paths):
            step = min(size, max(1, -(-(len(paths) - at) // (2 * workers))))
            yield list(paths[at : at + step])
            at += step
        return
    chunk: list[Path] = []
    for path in paths:
        chunk.append(path)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
