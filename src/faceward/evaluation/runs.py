"""Analyse an evaluation's images once, cache the raw descriptors, and derive every pipeline variant from them.

Per image we keep the subject of the photo as searches pick it (the most
prominent face of the configured detector, YuNet by default, or HOG; or, when
it finds none, the central region, as LFW's protocol scores every pair) and, for images where it found nothing, the MMOD CNN
detector's face. Raw descriptors of each chip and its
mirror are kept, so "plain", "flip-averaged" and "MMOD fallback" are all views
of one pass. The cache lives in FACEWARD_HOME/cache, keyed by engine options.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from faceward.settings import Detector
from faceward.vision.embed import normalise
from faceward.vision.engine import EngineOptions
from faceward.vision.pipeline import FileFace, FileResult, analyze_files
from faceward.vision.subject import Embed, subject_face
from faceward.vision.types import Box


@dataclass
class ImageAnalysis:
    primary: FileFace | None  # the primary detector's face, or the central region when it found none
    hog_found: bool  # the primary detector (HOG or YuNet, per the options) found a face
    mmod: FileFace | None = None
    error: str | None = None


@dataclass(frozen=True)
class Variant:
    """One pipeline recipe over cached analyses."""

    name: str
    flip_average: bool
    mmod_fallback: bool
    jitter: bool = False

    def descriptor(self, analysis: ImageAnalysis) -> np.ndarray | None:
        face = analysis.primary
        if not analysis.hog_found and self.mmod_fallback and analysis.mmod is not None:
            face = analysis.mmod
        if face is None:
            return None
        if self.jitter:
            if face.raw_jittered is None:
                raise ValueError("this analysis was made without jitters")
            return cast(np.ndarray, normalise(face.raw_jittered[None, :].astype(np.float32))[0])
        return face.template(self.flip_average)


BASELINE = Variant("face_recognition-style (detector, 5-pt chip, ResNet)", flip_average=False, mmod_fallback=False)
FACEWARD = Variant("faceward (flip-averaged, MMOD fallback)", flip_average=True, mmod_fallback=True)
VARIANTS = (BASELINE, Variant("+ flip-average", True, False), Variant("+ MMOD fallback", False, True), FACEWARD)
JITTER = Variant("dlib jitter (10 copies) + MMOD fallback", flip_average=False, mmod_fallback=True, jitter=True)


def _face_to_json(face: FileFace | None) -> Any:
    if face is None:
        return None
    data = asdict(face)
    data.pop("measured", None)  # the cache keeps the rounded figures only
    assert face.raw is not None and face.raw_flipped is not None, "the subject is always embedded"
    data["raw"] = face.raw.tolist()
    data["raw_flipped"] = face.raw_flipped.tolist()
    data["raw_jittered"] = None if face.raw_jittered is None else face.raw_jittered.tolist()
    return data


def _face_from_json(data: Any) -> FileFace | None:
    if data is None:
        return None
    return FileFace(
        data["box"], data["detector"], data["detector_score"], data["quality"],
        np.asarray(data["raw"], dtype=np.float32), np.asarray(data["raw_flipped"], dtype=np.float32),
        None if data.get("raw_jittered") is None else np.asarray(data["raw_jittered"], dtype=np.float32),
    )


def _cache_file(cache_dir: Path, options: EngineOptions, jitters: int = 0) -> Path:
    # v2: the primary face is the photo's subject (most prominent), no longer the largest.
    fields: dict[str, Any] = {"engine": options.engine.value, "upsample": options.upsample, "v": 2}
    if options.detector is not Detector.HOG:  # HOG caches keep their old names
        fields["detector"] = options.detector.value
    if jitters:
        fields["jitters"] = jitters
    if options.recognizer:  # a model of one's own: its descriptors, keyed by its file's hash
        from faceward.vision.manifest import load_manifest

        manifest = load_manifest(Path(options.recognizer))
        fields["recognizer"] = manifest.model_id
        fields["alignment"] = manifest.alignment_sha256  # the chips' spec, the aligner's version included
    signature = json.dumps(fields, sort_keys=True)
    return cache_dir / f"eval-{hashlib.sha1(signature.encode()).hexdigest()[:12]}.json"


def analyse(
    paths: Iterable[Path],
    options: EngineOptions,
    *,
    cache_dir: Path | None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    jitters: int = 0,
) -> dict[Path, ImageAnalysis]:
    """Analyses for ``paths`` (cached ones reused); ``progress(n)`` is called as images finish."""
    paths = list(dict.fromkeys(paths))
    cache_path = _cache_file(cache_dir, options, jitters) if cache_dir else None
    cached: dict[str, Any] = {}
    if cache_path and cache_path.is_file():
        cached = json.loads(cache_path.read_text())
    out: dict[Path, ImageAnalysis] = {}
    todo = []
    for path in paths:
        entry = cached.get(str(path.resolve()))
        if entry is None:
            todo.append(path)
            continue
        out[path] = ImageAnalysis(
            _face_from_json(entry["primary"]), entry["hog_found"], _face_from_json(entry["mmod"]), entry["error"]
        )
        if progress:
            progress(1)
    primary = options.detector if options.detector is not Detector.MMOD else Detector.HOG
    hog_options = replace(options, detector=primary, detector_fallback=False, flip_average=False)
    missing_face: list[Path] = []
    for result in analyze_files(todo, hog_options, workers=workers, assume_centre=True, jitters=jitters, embed=Embed.SUBJECT):
        out[result.path] = _from_result(result)
        if result.faces and result.faces[0].detector == "centre":
            missing_face.append(result.path)
        elif progress:
            progress(1)
    mmod_options = replace(hog_options, detector=Detector.MMOD)
    for result in analyze_files(missing_face, mmod_options, workers=workers, jitters=jitters, embed=Embed.SUBJECT):
        out[result.path].mmod = _subject(result)
        if progress:
            progress(1)
    if cache_path and todo:
        for path in todo:
            a = out[path]
            cached[str(path.resolve())] = {
                "primary": _face_to_json(a.primary), "hog_found": a.hog_found,
                "mmod": _face_to_json(a.mmod), "error": a.error,
            }
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cached))
        tmp.replace(cache_path)
    return out


def _from_result(result: FileResult) -> ImageAnalysis:
    if result.error:
        return ImageAnalysis(None, False, error=result.error)
    face = _subject(result)
    return ImageAnalysis(face, face is not None and face.detector != "centre")


def _subject(result: FileResult) -> FileFace | None:
    """The face a search would match by default: the photo's subject (:func:`subject_face`)."""
    if not result.faces:
        return None
    return result.faces[subject_face([Box(**face.box) for face in result.faces], result.size)]
