"""Bulk analysis: batching images into one descriptor run changes no number, and keeps every result in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceward.settings import Engine
from faceward.vision import decode_image
from faceward.vision.engine import EngineOptions, FaceEngine
from faceward.vision.pipeline import Analyzer, _chunks, analyze_files
from faceward.vision.subject import Embed
from tests.conftest import jpeg, with_bystander


def test_batches_give_the_same_descriptors_as_single_images(tmp_path: Path, astronaut: np.ndarray) -> None:
    files = {
        "a.jpg": jpeg(astronaut),
        "blank.jpg": jpeg(np.full((120, 120, 3), 128, dtype=np.uint8)),
        "b.jpg": jpeg(np.ascontiguousarray(astronaut[:, ::-1])),
        "broken.jpg": b"not an image",
        "c.jpg": jpeg(astronaut, quality=70),
    }
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    options = EngineOptions(engine=Engine.ONNX, detector_fallback=False, cache_dir=str(tmp_path / "cache"))
    single = list(analyze_files(paths, options, workers=1, batch=1))
    batched = list(analyze_files(paths, options, workers=1, batch=4))
    assert [r.path for r in single] == [r.path for r in batched] == paths
    assert [len(r.faces) for r in batched] == [1, 0, 1, 0, 1]
    assert batched[3].error_code == "unsupported_format" and batched[1].error is None
    for one, many in zip(single, batched, strict=True):
        assert one.sha256 == many.sha256
        for f1, f2 in zip(one.faces, many.faces, strict=True):
            assert f1.box == f2.box and f1.quality == f2.quality
            assert np.array_equal(f1.raw, f2.raw) and np.array_equal(f1.raw_flipped, f2.raw_flipped)
    # ... and the same numbers as the engine's own verbs.
    engine = FaceEngine(options)
    [face] = engine.faces(decode_image(files["a.jpg"]))
    runtime = engine.embedder.runtime
    assert np.array_equal(runtime.compute(face.chip[None])[0], batched[0].faces[0].raw)
    assert np.array_equal(runtime.compute(np.ascontiguousarray(face.chip[None, :, ::-1]))[0], batched[0].faces[0].raw_flipped)


def test_worker_pool_warms_every_worker_and_gives_the_same_results(tmp_path: Path, astronaut: np.ndarray) -> None:
    paths = []
    for i in range(5):
        path = tmp_path / f"{i}.jpg"
        path.write_bytes(jpeg(astronaut, quality=60 + 5 * i))
        paths.append(path)
    options = EngineOptions(engine=Engine.ONNX, detector_fallback=False, cache_dir=str(tmp_path / "cache"))
    alone = list(analyze_files(paths, options, workers=1))
    with Analyzer(options, workers=2, batch=2) as analyzer:
        analyzer.warm()
        assert len(set(analyzer.pids)) == 2
        pooled = list(analyzer.analyze(paths))
    assert [r.path for r in pooled] == paths
    for a, b in zip(alone, pooled, strict=True):
        assert a.sha256 == b.sha256 and np.array_equal(a.faces[0].raw, b.faces[0].raw)


def test_enrollment_embeds_the_subject_alone_with_the_same_numbers(tmp_path: Path, astronaut: np.ndarray) -> None:
    """Decision 038: no template of a bystander is computed; the subject's is bit-identical to embedding all."""
    pair, twins = tmp_path / "pair.jpg", tmp_path / "twins.jpg"
    pair.write_bytes(jpeg(with_bystander(astronaut)))
    twins.write_bytes(jpeg(np.concatenate([astronaut, astronaut], axis=1)))
    options = EngineOptions(engine=Engine.ONNX, detector_fallback=False, cache_dir=str(tmp_path / "cache"))
    with Analyzer(options, workers=1) as analyzer:
        every, chosen, ambiguous, named, none = (
            list(analyzer.analyze([path], embed=embed))[0]
            for path, embed in ((pair, Embed.ALL), (pair, Embed.DOMINANT), (twins, Embed.DOMINANT), (pair, 1), (pair, Embed.NONE))
        )
    assert len(every.faces) == len(chosen.faces) == 2 and every.faces[0].box == chosen.faces[0].box
    assert all(f.raw is not None for f in every.faces)
    assert np.array_equal(chosen.faces[0].raw, every.faces[0].raw)
    assert np.array_equal(chosen.faces[0].raw_flipped, every.faces[0].raw_flipped)
    assert chosen.faces[1].raw is None and chosen.faces[1].raw_flipped is None and chosen.faces[1].measured is not None
    assert [f.raw is None for f in ambiguous.faces] == [True, True]  # the act refuses it from the boxes
    assert [f.raw is None for f in named.faces] == [True, False]
    assert np.array_equal(named.faces[1].raw, every.faces[1].raw)
    assert all(f.raw is None for f in none.faces)
    with pytest.raises(ValueError, match="not embedded"):
        chosen.faces[1].template(True)


def test_batches_shrink_at_the_end_of_a_list_so_workers_finish_together() -> None:
    paths = [Path(f"{n}.jpg") for n in range(50)]
    chunks = list(_chunks(paths, 4, workers=2))
    assert [p for chunk in chunks for p in chunk] == paths  # every path once, in order
    sizes = [len(c) for c in chunks]
    assert max(sizes) == 4 and sizes[:5] == [4] * 5 and sizes[-3:] == [1, 1, 1]
    assert sizes == sorted(sizes, reverse=True)
    # One worker, or a stream of unknown length: plain batches.
    assert [len(c) for c in _chunks(paths, 4, workers=1)] == [4] * 12 + [2]
    assert [len(c) for c in _chunks(iter(paths), 4, workers=2)] == [4] * 12 + [2]
    assert list(_chunks([], 4, workers=2)) == []
