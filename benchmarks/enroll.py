"""End-to-end enrollment throughput and per-stage times: faceward vs the face_recognition-style pipeline.

Both run on the same lfw-dev images in the same process run. The baseline is
what ``face_recognition.face_encodings(img, model="small")`` does with dlib
from PyPI: HOG detection with one upsampling, 5-point landmarks, a 150x150
chip and dlib's ResNet, one image at a time in one process. faceward runs its
bulk pipeline (worker processes, batches of images, bounded queue) with the
engine in settings (ONNX by default here, which runs the MMOD fallback
converted too), flip-averaged descriptors and the MMOD fallback. As
``faceward enroll`` does, it embeds each photo's enrollment subject alone
(decision 038); the baseline embeds every face it finds, as
``face_encodings`` does. Both counts are reported, and ``--embed all`` times
faceward embedding every face too.

The two alternate over ``--rounds`` slices of the images so that other load on
a shared host weighs on both alike; model loading and worker start-up are
outside the timings. Besides wall-clock throughput it reports CPU time per
image (workers included, read from ``/proc``), whose ratio times the worker
count is what the speed-up would be on that many idle cores.

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
from faceward.vision.decode import read_image_file  # noqa: E402
from faceward.vision.embed import DlibDescriptor  # noqa: E402
from faceward.vision.engine import EngineOptions, FaceEngine  # noqa: E402
from faceward.vision.models import ModelName, verified_path  # noqa: E402
from faceward.vision.pipeline import DEFAULT_BATCH, Analyzer  # noqa: E402
from faceward.vision.subject import Embed, to_embed  # noqa: E402


def lfw_images(root: Path, count: int) -> list[Path]:
    files = sorted((root / "images").glob("*/*.jpg"))
    step = max(1, len(files) // count)
    return files[::step][:count]


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``; 0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def baseline(paths: list[Path]) -> dict[str, float]:
    """face_recognition's recipe, stage by stage, with dlib as published on PyPI."""
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(verified_path(ModelName.LANDMARKS_5)))
    net = dlib.face_recognition_model_v1(str(verified_path(ModelName.DESCRIPTOR)))
    stages = {"decode": 0.0, "detect": 0.0, "landmarks": 0.0, "descriptor": 0.0}
    faces = 0
    start, cpu = time.perf_counter(), time.process_time()
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
    total, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"images_per_s": len(paths) / total, "faces": faces, "seconds": total,
            "cpu_ms_per_image": 1000 * cpu / len(paths),
            **{f"{k}_ms_per_image": 1000 * v / len(paths) for k, v in stages.items()}}


def faceward_stages(paths: list[Path], options: EngineOptions, embed: Embed) -> dict[str, float]:
    """faceward's engine in one process on one thread, stage by stage, as a pipeline worker runs it.

    Descriptors go in batches of ``DEFAULT_BATCH`` images (faces and mirror images in one call);
    ``detect`` includes the MMOD fallback on the images where HOG finds nothing. Landmarks and chips
    are made for every face (its quality is reported), descriptors for the faces ``embed`` picks.
    """
    engine = FaceEngine(replace(options, threads=1))
    engine.load()
    runtime = engine.embedder.runtime
    stages = {"decode": 0.0, "detect": 0.0, "landmarks_chip": 0.0, "descriptor": 0.0}
    fallbacks = 0
    start, cpu = time.perf_counter(), time.process_time()
    for first in range(0, len(paths), DEFAULT_BATCH):
        chips = []
        for path in paths[first : first + DEFAULT_BATCH]:
            t0 = time.perf_counter()
            pixels, _ = read_image_file(path)
            t1 = time.perf_counter()
            detections = engine.detect(pixels)
            t2 = time.perf_counter()
            fallbacks += any(d.detector == "mmod" for d in detections)
            every = [engine.aligner.chip(pixels, d.box, engine._landmarks.predict(pixels, d.box)) for d in detections]
            size = (pixels.shape[1], pixels.shape[0])
            chips.extend(every[i] for i in to_embed([d.box for d in detections], size, embed))
            t3 = time.perf_counter()
            for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2)):
                stages[key] += dt
        t3 = time.perf_counter()
        if chips:
            batch = np.stack(chips)
            runtime.compute(np.concatenate([batch, batch[:, :, ::-1]]) if options.flip_average else batch)
        stages["descriptor"] += time.perf_counter() - t3
    total, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"images_per_s": len(paths) / total, "cpu_ms_per_image": 1000 * cpu / len(paths),
            "mmod_fallback_images": fallbacks,
            **{f"{k}_ms_per_image": 1000 * v / len(paths) for k, v in stages.items()}}


def faceward_bulk(analyzer: Analyzer, paths: list[Path], embed: Embed) -> dict[str, float]:
    """The bulk pipeline ``faceward enroll`` runs, on workers that have loaded their models already."""
    pids = [p for p in analyzer.pids if p != os.getpid()]
    cpu0 = sum(proc_cpu_seconds(p) for p in pids) + time.process_time()
    start = time.perf_counter()
    results = list(analyzer.analyze(paths, embed=embed))
    total = time.perf_counter() - start
    cpu = sum(proc_cpu_seconds(p) for p in pids) + time.process_time() - cpu0
    faces = sum(len(r.faces) for r in results)
    embedded = sum(f.raw is not None for r in results for f in r.faces)
    return {"images_per_s": len(paths) / total, "faces": faces, "embedded": embedded, "seconds": total,
            "workers": analyzer.workers, "cpu_ms_per_image": 1000 * cpu / len(paths)}


def combine(parts: list[dict[str, float]], images: list[int]) -> dict[str, float]:
    """Rounds summed: throughput over all images, per-image figures weighted by images."""
    total = sum(images)
    out = {k: sum(p[k] * n for p, n in zip(parts, images)) / total for k in parts[0] if k.endswith("_per_image")}
    out["seconds"] = sum(p["seconds"] for p in parts)
    out["images_per_s"] = total / out["seconds"]
    for key in ("faces", "embedded"):
        if key in parts[0]:
            out[key] = sum(p[key] for p in parts)
    for key in ("workers",):
        if key in parts[0]:
            out[key] = parts[0][key]
    return out


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
    parser.add_argument("--rounds", type=int, default=4, help="Alternate baseline and faceward over this many image slices.")
    parser.add_argument("--embed", choices=["dominant", "all"], default="dominant",
                        help="Faces faceward embeds: the enrollment subject, as `faceward enroll` does, or every face.")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    paths = lfw_images(args.lfw, args.images)
    embed = Embed(args.embed)
    options = replace(EngineOptions(), engine=Engine(args.engine), cache_dir=str(Path.home() / ".cache" / "faceward"))
    load_before = os.getloadavg()

    # Baseline and faceward alternate over slices of the images, so that the other load on a shared
    # host weighs on both alike; model loading and worker start-up are outside every timing.
    slices = [paths[i :: args.rounds] for i in range(args.rounds)]
    base_parts, bulk_parts = [], []
    with Analyzer(options, workers=args.workers) as analyzer:
        analyzer.warm()
        baseline(paths[:2])  # load dlib's models once outside the timing (page cache, allocator)
        for part in slices:
            base_parts.append(baseline(part))
            bulk_parts.append(faceward_bulk(analyzer, part, embed))
    sizes = [len(p) for p in slices]
    base, bulk = combine(base_parts, sizes), combine(bulk_parts, sizes)
    stages = faceward_stages(paths, options, embed)
    engine = FaceEngine(options)
    chips = []
    for path in paths[:64]:
        pixels = read_image_file(path)[0]
        chips.extend(f.chip for f in engine.faces(pixels))
    desc = descriptor_only(np.stack(chips[:32]))
    load_after = os.getloadavg()

    cpu_ratio = base["cpu_ms_per_image"] / bulk["cpu_ms_per_image"]
    cores = min(args.workers, os.cpu_count() or 1)
    result = {
        "benchmark": "enroll",
        "images": len(paths),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "processor": platform.processor(),
                    "load_average_before": load_before, "load_average_after": load_after},
        "baseline_face_recognition_style": base,
        "faceward_stages": stages,
        "faceward_bulk": bulk,
        "descriptor": desc,
        "detector": options.detector.value,
        "embed": embed.value,
        # The detector's share of faceward's per-image time, stage by stage in one process.
        # (The stage times only: cpu_ms_per_image is not a stage; counting it made 20% read as 17%.)
        "detector_share": stages["detect_ms_per_image"] / sum(
            stages[f"{k}_ms_per_image"] for k in ("decode", "detect", "landmarks_chip", "descriptor")
        ),
        "speedup_end_to_end": bulk["images_per_s"] / base["images_per_s"],
        "cpu_time_ratio": cpu_ratio,
        "speedup_on_idle_cores": cpu_ratio * cores,
    }
    print(f"{'pipeline':44} {'img/s':>8} {'CPU ms':>8} {'decode':>8} {'detect':>8} {'landmk':>8} {'descr':>8}  (ms/image)")
    print(f"{'face_recognition-style (dlib, 1 process)':44} {base['images_per_s']:8.2f} {base['cpu_ms_per_image']:8.1f} "
          f"{base['decode_ms_per_image']:8.1f} {base['detect_ms_per_image']:8.1f} {base['landmarks_ms_per_image']:8.1f} "
          f"{base['descriptor_ms_per_image']:8.1f}")
    print(f"{'faceward stages (1 process, 1 thread)':44} {stages['images_per_s']:8.2f} {stages['cpu_ms_per_image']:8.1f} "
          f"{stages['decode_ms_per_image']:8.1f} {stages['detect_ms_per_image']:8.1f} "
          f"{stages['landmarks_chip_ms_per_image']:8.1f} {stages['descriptor_ms_per_image']:8.1f}")
    print(f"{f'faceward bulk ({args.workers} workers, {args.engine})':44} {bulk['images_per_s']:8.2f} {bulk['cpu_ms_per_image']:8.1f}")
    print(f"end-to-end speed-up: {result['speedup_end_to_end']:.2f}x (wall, {args.rounds} alternating rounds); "
          f"CPU time per image {cpu_ratio:.2f}x less, i.e. {result['speedup_on_idle_cores']:.2f}x on {cores} idle cores")
    print(f"detector: {100 * result['detector_share']:.0f}% of faceward's per-image time (stages, 1 process)")
    print(f"faces embedded: faceward {bulk['embedded']} of {bulk['faces']} found ({embed.value}); "
          f"baseline {base['faces']} (every face it finds)")
    print(f"MMOD fallback on {stages['mmod_fallback_images']} of {len(paths)} images; load average "
          f"{load_before[0]:.1f} -> {load_after[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"descriptor: dlib {desc['dlib_descriptor_ms_per_face']:.1f} ms/face vs onnx "
          f"{desc['onnx_descriptor_ms_per_face']:.1f} ms/face ({desc['descriptor_speedup']:.1f}x)")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
