"""End-to-end enrollment throughput and per-stage times: faceward vs the face_recognition-style pipeline.

Both run on the same lfw-dev images in the same process run. The baseline is
what ``face_recognition.face_encodings(img, model="small")`` does with dlib
from PyPI: HOG detection with one upsampling, 5-point landmarks, a 150x150
chip and dlib's ResNet, one image at a time in one process. faceward runs its
bulk pipeline (worker processes, bounded queue) with the engine in settings
(ONNX by default here), flip-averaged descriptors and the MMOD fallback.

    python benchmarks/enroll.py --images 200 --json-out results/enroll.json

Accuracy of both recipes on the same pairs comes from ``faceward eval pairs
--all-variants`` (same cached analyses); ``--pairs`` adds it here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import dlib
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from faceward.settings import Engine  # noqa: E402
from faceward.vision.align import LandmarkPredictor, face_chip  # noqa: E402
from faceward.vision.decode import read_image_file  # noqa: E402
from faceward.vision.embed import DlibDescriptor  # noqa: E402
from faceward.vision.engine import EngineOptions, FaceEngine  # noqa: E402
from faceward.vision.models import ModelName, verified_path  # noqa: E402
from faceward.vision.pipeline import analyze_files  # noqa: E402


def lfw_images(root: Path, count: int) -> list[Path]:
    files = sorted((root / "images").glob("*/*.jpg"))
    step = max(1, len(files) // count)
    return files[::step][:count]


def baseline(paths: list[Path]) -> dict[str, float]:
    """face_recognition's recipe, stage by stage, with dlib as published on PyPI."""
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(verified_path(ModelName.LANDMARKS_5)))
    net = dlib.face_recognition_model_v1(str(verified_path(ModelName.DESCRIPTOR)))
    stages = {"decode": 0.0, "detect": 0.0, "landmarks": 0.0, "descriptor": 0.0}
    faces = 0
    start = time.perf_counter()
    for path in paths:
        t0 = time.perf_counter()
        pixels, _ = read_image_file(path)
        t1 = time.perf_counter()
        rects = detector(pixels, 1)
        t2 = time.perf_counter()
        shapes = [predictor(pixels, r) for r in rects]
        t3 = time.perf_counter()
        for shape in shapes:
            np.asarray(net.compute_face_descriptor(pixels, shape))
            faces += 1
        t4 = time.perf_counter()
        for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            stages[key] += dt
    total = time.perf_counter() - start
    return {"images_per_s": len(paths) / total, "faces": faces, "seconds": total,
            **{f"{k}_ms_per_image": 1000 * v / len(paths) for k, v in stages.items()}}


def faceward_stages(paths: list[Path], options: EngineOptions) -> dict[str, float]:
    """faceward's engine in one process, stage by stage."""
    engine = FaceEngine(options)
    landmarks = LandmarkPredictor()
    runtime = engine.embedder.runtime
    engine.analyze(read_image_file(paths[0])[0])  # load models outside the timing
    stages = {"decode": 0.0, "detect": 0.0, "landmarks_chip": 0.0, "descriptor": 0.0}
    for path in paths:
        t0 = time.perf_counter()
        pixels, _ = read_image_file(path)
        t1 = time.perf_counter()
        detections = engine.detect(pixels)
        t2 = time.perf_counter()
        chips = [face_chip(pixels, d.box, landmarks.predict(pixels, d.box)) for d in detections]
        t3 = time.perf_counter()
        if chips:
            batch = np.stack(chips)
            runtime.compute(batch)
            if options.flip_average:
                runtime.compute(np.ascontiguousarray(batch[:, :, ::-1]))
        t4 = time.perf_counter()
        for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            stages[key] += dt
    return {f"{k}_ms_per_image": 1000 * v / len(paths) for k, v in stages.items()}


def faceward_bulk(paths: list[Path], options: EngineOptions, workers: int) -> dict[str, float]:
    list(analyze_files(paths[:2], options, workers=workers))  # warm: spawn + model load measured apart
    start = time.perf_counter()
    faces = sum(len(r.faces) for r in analyze_files(paths, options, workers=workers))
    total = time.perf_counter() - start
    return {"images_per_s": len(paths) / total, "faces": faces, "seconds": total, "workers": workers}


def descriptor_only(chips: np.ndarray, repeats: int = 3) -> dict[str, float]:
    dlib_rt = DlibDescriptor()
    from faceward.vision.onnx import OnnxDescriptor, converted_model_path

    onnx_rt = OnnxDescriptor(converted_model_path("descriptor", Path.home() / ".cache" / "faceward" / "models"))
    out = {}
    for name, rt in (("dlib", dlib_rt), ("onnx", onnx_rt)):
        rt.compute(chips[:2])
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            rt.compute(chips)
            times.append(time.perf_counter() - t)
        out[f"{name}_descriptor_ms_per_face"] = 1000 * statistics.median(times) / len(chips)
    out["descriptor_speedup"] = out["dlib_descriptor_ms_per_face"] / out["onnx_descriptor_ms_per_face"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, default=REPO.parent / "shared" / "datasets" / "lfw-dev")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--engine", choices=[e.value for e in Engine], default="onnx")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    paths = lfw_images(args.lfw, args.images)
    options = replace(EngineOptions(), engine=Engine(args.engine), cache_dir=str(Path.home() / ".cache" / "faceward"))

    base = baseline(paths)
    stages = faceward_stages(paths, options)
    bulk = faceward_bulk(paths, options, args.workers)
    engine = FaceEngine(options)
    chips = []
    for path in paths[:64]:
        pixels = read_image_file(path)[0]
        chips.extend(f.chip for f in engine.faces(pixels))
    desc = descriptor_only(np.stack(chips[:32]))

    result = {
        "benchmark": "enroll",
        "images": len(paths),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "processor": platform.processor()},
        "baseline_face_recognition_style": base,
        "faceward_stages": stages,
        "faceward_bulk": bulk,
        "descriptor": desc,
        "speedup_end_to_end": bulk["images_per_s"] / base["images_per_s"],
    }
    print(f"{'pipeline':44} {'img/s':>8} {'decode':>8} {'detect':>8} {'landmk':>8} {'descr':>8}  (ms/image)")
    print(f"{'face_recognition-style (dlib, 1 process)':44} {base['images_per_s']:8.2f} {base['decode_ms_per_image']:8.1f} "
          f"{base['detect_ms_per_image']:8.1f} {base['landmarks_ms_per_image']:8.1f} {base['descriptor_ms_per_image']:8.1f}")
    print(f"{'faceward stages (1 process)':44} {'':8} {stages['decode_ms_per_image']:8.1f} {stages['detect_ms_per_image']:8.1f} "
          f"{stages['landmarks_chip_ms_per_image']:8.1f} {stages['descriptor_ms_per_image']:8.1f}")
    print(f"{f'faceward bulk ({args.workers} workers, {args.engine})':44} {bulk['images_per_s']:8.2f}")
    print(f"end-to-end speed-up: {result['speedup_end_to_end']:.2f}x; descriptor dlib {desc['dlib_descriptor_ms_per_face']:.1f} ms/face "
          f"vs onnx {desc['onnx_descriptor_ms_per_face']:.1f} ms/face ({desc['descriptor_speedup']:.1f}x)")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
