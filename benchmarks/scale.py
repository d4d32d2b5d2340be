"""Scale benchmark: recall, latency and memory of a vector index backend against exact search.

    python benchmarks/scale.py --size 1000000 --backend ann --json
    python benchmarks/scale.py --size 1000000 --backend milvus-server --json

``milvus-server`` starts a Milvus standalone server of its own (PyPI ``milvus``,
loopback ports, a data folder under the cache) and stops it at the end; it
also measures the in-process ANN default on the same gallery and queries, so
both latencies come from the same run on the same contended machine.

The gallery is real dlib descriptors of lfw-dev images (the "mates") padded
with synthetic distractors drawn from a Gaussian fitted to the real
descriptors (see ``distractors``). Recall is measured against exact search on
the same gallery in the same run, so exact is the baseline by construction.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

DATASET = Path(os.environ.get("FACEWARD_LFW_DEV", "/work/shared/datasets/lfw-dev"))
CACHE = Path(os.environ.get("FACEWARD_BENCH_CACHE", Path.home() / ".cache" / "faceward-bench"))
RESULTS = Path(__file__).resolve().parent.parent / "results"
DIM = 128

# Which lfw-dev images get descriptors. Identities with two or more images give
# mated probes (up to IMAGES_PER_MATE of them); singletons give non-mated probes.
IMAGES_PER_MATE = 3
NON_MATED_IDENTITIES = 1000


@dataclass(frozen=True)
class RealDescriptors:
    vectors: NDArray[np.float32]  # N x 128, unit
    identity: NDArray[np.str_]  # N
    path: NDArray[np.str_]  # N, relative to images/


def _chosen_images() -> list[Path]:
    root = DATASET / "images"
    mates: list[Path] = []
    singles: list[Path] = []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(person.glob("*.jpg"))
        if len(images) >= 2:
            mates.extend(images[:IMAGES_PER_MATE])
        elif images:
            singles.append(images[0])
    # A fixed, name-keyed choice of singletons, so the cache is reproducible.
    singles.sort(key=lambda p: hashlib.sha256(p.parent.name.encode()).digest())
    return mates + singles[:NON_MATED_IDENTITIES]


def real_descriptors() -> RealDescriptors:
    """Descriptors of the chosen lfw-dev images, computed once and cached outside the repository."""
    cache = CACHE / f"lfw-dev-dlib-m{IMAGES_PER_MATE}-n{NON_MATED_IDENTITIES}.npz"
    if cache.exists():
        data = np.load(cache)
        return RealDescriptors(data["vectors"], data["identity"], data["path"])
    from faceward.vision import EngineOptions, FaceEngine, read_image_file

    engine = FaceEngine(EngineOptions(flip_average=False))
    vectors: list[NDArray[np.float32]] = []
    identity: list[str] = []
    paths: list[str] = []
    chosen = _chosen_images()
    started = time.perf_counter()
    for i, image_path in enumerate(chosen):
        pixels, _ = read_image_file(image_path)
        faces = [f for f in engine.analyze(pixels) if f.descriptor is not None]
        if not faces:
            continue
        # lfw images are centred on the named person; other faces are bystanders.
        h, w = pixels.shape[:2]
        face = min(faces, key=lambda f: ((f.box.left + f.box.right) / 2 - w / 2) ** 2
                   + ((f.box.top + f.box.bottom) / 2 - h / 2) ** 2)
        assert face.descriptor is not None
        vectors.append(face.descriptor.astype(np.float32))
        identity.append(image_path.parent.name)
        paths.append(f"{image_path.parent.name}/{image_path.name}")
        if i % 200 == 0:
            print(f"descriptors: {i}/{len(chosen)} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    CACHE.mkdir(parents=True, exist_ok=True)
    out = RealDescriptors(np.stack(vectors), np.array(identity), np.array(paths))
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, vectors=out.vectors, identity=out.identity, path=out.path)
    os.replace(tmp, cache)
    return out



# -- distractors ----------------------------------------------------------------


@dataclass(frozen=True)
class DistractorModel:
    """A Gaussian with the real descriptors' mean and full covariance, samples projected onto the sphere.

    Each sample stands for one image of a person nobody enrolled. The total
    covariance (between identities plus within identity) is the right marginal
    for "one image of a random person". What it cannot reproduce: identity
    clusters (no two distractors are the same person), demographic structure
    and hubness beyond second order, and dataset bias (lfw is news photos of
    mostly well-known adults). ``check`` measures how far the impostor score
    distribution against distractors is from the real one.
    """

    mean: NDArray[np.float64]
    chol: NDArray[np.float64]

    @classmethod
    def fit(cls, vectors: NDArray[np.float32]) -> DistractorModel:
        x = vectors.astype(np.float64)
        mean = x.mean(axis=0)
        cov = np.cov(x, rowvar=False) + 1e-9 * np.eye(x.shape[1])
        return cls(mean, np.linalg.cholesky(cov))

    def sample(self, n: int, seed: int, chunk: int = 262_144) -> Iterator[NDArray[np.float32]]:
        """``n`` unit vectors in chunks; the same seed gives the same gallery."""
        rng = np.random.default_rng(seed)
        for start in range(0, n, chunk):
            z = rng.standard_normal((min(chunk, n - start), len(self.mean)))
            x = (z @ self.chol.T + self.mean).astype(np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            yield x

    def check(self, real: RealDescriptors, seed: int = 99) -> dict[str, float]:
        """Impostor score statistics: real vs real (other identities) and real vs distractors."""
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(real.vectors), size=min(1500, len(real.vectors)), replace=False)
        v, ids = real.vectors[pick], real.identity[pick]
        real_scores = (v @ v.T)[ids[:, None] != ids[None, :]]
        fake = next(self.sample(len(v), seed + 1))
        fake_scores = (v @ fake.T).ravel()
        q = [0.5, 0.99, 0.999, 0.9999]
        out = {"real_impostor_mean": float(real_scores.mean()), "real_impostor_std": float(real_scores.std()),
               "distractor_impostor_mean": float(fake_scores.mean()),
               "distractor_impostor_std": float(fake_scores.std())}
        for quantile, a, b in zip(q, np.quantile(real_scores, q), np.quantile(fake_scores, q)):
            out[f"real_impostor_q{quantile}"] = float(a)
            out[f"distractor_impostor_q{quantile}"] = float(b)
        return out


# -- galleries and probes -------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Enrolled mates (one image per identity), mated probes, non-mated probes; all real."""

    gallery: NDArray[np.float32]
    gallery_identity: NDArray[np.str_]
    mated: NDArray[np.float32]
    mated_identity: NDArray[np.str_]
    non_mated: NDArray[np.float32]


def split(real: RealDescriptors) -> Split:
    """Every other multi-image identity is enrolled (its first image); the rest, and all singletons, are not.

    The identities left out make the non-mated probes realistic: they come from
    the same photo collection, pose and ageing mix as the mated ones.
    """
    names = np.unique(real.identity)
    counts = {n: c for n, c in zip(*np.unique(real.identity, return_counts=True))}
    multi = [n for n in names if counts[n] >= 2]
    enrolled = set(multi[::2])
    first = np.zeros(len(real.identity), dtype=bool)
    seen: set[str] = set()
    for i, name in enumerate(real.identity.tolist()):
        if name in enrolled and name not in seen:
            first[i] = True
            seen.add(name)
    is_enrolled = np.isin(real.identity, list(enrolled))
    return Split(
        gallery=real.vectors[first], gallery_identity=real.identity[first],
        mated=real.vectors[is_enrolled & ~first], mated_identity=real.identity[is_enrolled & ~first],
        non_mated=real.vectors[~is_enrolled],
    )


def build_gallery(real_gallery: NDArray[np.float32], size: int, model: DistractorModel, seed: int
                  ) -> NDArray[np.float32]:
    """``size`` rows: the real enrolled faces first (labels 0..m-1), then distractors."""
    if size < len(real_gallery):
        raise SystemExit(f"--size must be at least the {len(real_gallery)} real enrolled faces")
    gallery = np.empty((size, DIM), dtype=np.float32)
    gallery[: len(real_gallery)] = real_gallery
    at = len(real_gallery)
    for chunk in model.sample(size - at, seed):
        gallery[at : at + len(chunk)] = chunk
        at += len(chunk)
    return gallery


def exact_top_k(gallery: NDArray[np.float32], queries: NDArray[np.float32], k: int, block: int = 131_072
                ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Brute-force inner-product top-k over ``gallery`` in blocks (the ExactIndex computation, without its copy)."""
    best_labels = np.full((len(queries), k), -1, dtype=np.int64)
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    for start in range(0, len(gallery), block):
        scores = queries @ gallery[start : start + block].T
        take = min(k, scores.shape[1])
        top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
        labels = np.concatenate([best_labels, top + start], axis=1)
        merged = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        order = np.argsort(-merged, axis=1, kind="stable")[:, :k]
        best_labels = np.take_along_axis(labels, order, axis=1)
        best_scores = np.take_along_axis(merged, order, axis=1)
    return best_labels, best_scores


# -- open-set identification (also used by open_set.py) -------------------------

FPIRS = (0.01, 0.001)


def threshold_at(non_mated_best: NDArray[np.float32], fpir: float) -> float:
    """Lowest threshold whose FPIR on these scores is at most ``fpir``."""
    ranked = np.sort(non_mated_best)[::-1]
    allowed = int(np.floor(fpir * len(ranked)))
    if allowed >= len(ranked):
        return float(-np.inf)
    return float(np.nextafter(ranked[allowed], np.float32(np.inf)))


def evaluate_open_set(
    best_label: NDArray[np.int64], best_score: NDArray[np.float32], mate_label: NDArray[np.int64],
    non_mated_best: NDArray[np.float32],
) -> dict[str, Any]:
    """FNIR at each FPIR in ``FPIRS``, candidate list of one: a mated probe succeeds if its mate is first and >= T."""
    hit = best_label == mate_label
    out: dict[str, Any] = {"rank1_miss_rate": float(1 - hit.mean())}
    for fpir in FPIRS:
        t = threshold_at(non_mated_best, fpir)
        out[f"threshold_at_fpir_{fpir}"] = t
        out[f"fpir_achieved_{fpir}"] = float((non_mated_best >= t).mean())
        out[f"fnir_at_fpir_{fpir}"] = float(1 - (hit & (best_score >= t)).mean())
    return out


def mate_labels(parts: Split) -> NDArray[np.int64]:
    """The gallery label (row) of each mated probe's enrolled image."""
    label_of = {name: i for i, name in enumerate(parts.gallery_identity.tolist())}
    return np.array([label_of[n] for n in parts.mated_identity.tolist()], dtype=np.int64)


def open_set_of(index: Any, parts: Split, gallery: NDArray[np.float32] | None = None) -> dict[str, Any]:
    """Open-set figures of ``index`` (or of brute force over ``gallery`` when index is None)."""
    probes = np.concatenate([parts.mated, parts.non_mated])
    m = len(parts.mated)
    if index is None:
        assert gallery is not None
        labels, scores = exact_top_k(gallery, probes, 1)
    else:
        labels, scores = index.search(probes, 1)
    return evaluate_open_set(labels[:m, 0], scores[:m, 0], mate_labels(parts), scores[m:, 0])


# -- measuring -----------------------------------------------------------------


def rss_anon() -> int:
    """Anonymous resident bytes of this process (heap, not file-backed pages such as a memory-mapped file)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


def make_backend(backend: str, args: argparse.Namespace, tenant: str = "bench") -> Any:
    from faceward.index.factory import make_index
    from faceward.settings import IndexBackend

    options: dict[str, Any] = {}
    if backend == "ann":
        options = {k: getattr(args, k) for k in ("connectivity", "expansion_add", "expansion_search",
                                                 "rerank_factor", "quantisation", "shortlist") if getattr(args, k) is not None}
        options["exact_below"] = 0
        if args.vectors_dir:
            options["vectors_dir"] = args.vectors_dir
    elif backend in ("milvus", "milvus-server"):
        options = {"uri": args.milvus_uri}
        if args.milvus_index:
            options["index_type"] = args.milvus_index
        if args.milvus_index == "SCANN":
            options["index_params"] = {"nlist": args.nlist}
            options["search_params"] = {"nprobe": args.nprobe, "reorder_k": args.reorder_k}
        if args.milvus_index == "HNSW":
            options["index_params"] = {"M": args.connectivity or 16, "efConstruction": args.expansion_add or 128}
            options["search_params"] = {"ef": max(args.expansion_search or 64, args.k)}
    return make_index(IndexBackend("milvus" if backend == "milvus-server" else backend), tenant_id=tenant, options=options)


def add_all(index: Any, gallery: NDArray[np.float32], batch: int = 100_000) -> float:
    started = time.perf_counter()
    for start in range(0, len(gallery), batch):
        stop = min(start + batch, len(gallery))
        index.add(np.arange(start, stop, dtype=np.int64), gallery[start:stop])
    return time.perf_counter() - started


def one_at_a_time(index: Any, queries: NDArray[np.float32], k: int
                  ) -> tuple[NDArray[np.int64], list[float], list[float]]:
    """Results, wall seconds and process CPU seconds of each query searched alone.

    CPU time counts every thread a query used (a pq4 table scans its shards in
    parallel); on a shared machine wall time also counts the waits for a core.
    """
    latencies, cpu = [], []
    got = np.full((len(queries), k), -1, dtype=np.int64)
    for i, query in enumerate(queries):
        c0, t0 = time.process_time(), time.perf_counter()
        labels, _ = index.search(query[None, :], k)
        latencies.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        got[i] = labels[0]
    return got, latencies, cpu


def set_threads(index: Any, threads: int) -> None:
    """An ANN index's search threads: the latency loop's setting, or every core (0) for throughput."""
    from faceward.index.ann import AnnIndex

    if isinstance(index, AnnIndex):
        index.params = dataclasses.replace(index.params, threads=threads)


def index_bytes(index: Any) -> dict[str, int]:
    if hasattr(index, "memory_bytes"):
        return dict(index.memory_bytes())
    if hasattr(index, "_vectors"):  # ExactIndex: its matrix, labels, and a dict of ~100 B an entry
        return {"vectors": int(index._vectors.nbytes + index._labels.nbytes), "label_dict": 100 * len(index)}
    return {}


def recall(got: NDArray[np.int64], want: NDArray[np.int64], k: int) -> float:
    hits = [len(set(g[:k].tolist()) & set(w[:k].tolist())) for g, w in zip(got, want)]
    return float(np.sum(hits) / (len(want) * k))


def run(args: argparse.Namespace) -> dict[str, Any]:
    cached = (CACHE / f"lfw-dev-dlib-m{IMAGES_PER_MATE}-n{NON_MATED_IDENTITIES}.npz").exists()
    started = time.perf_counter()
    real = real_descriptors()
    descriptors_s = time.perf_counter() - started
    parts = split(real)
    model = DistractorModel.fit(real.vectors)
    probes = np.concatenate([parts.mated, parts.non_mated])
    rng = np.random.default_rng(args.seed)
    queries = probes[rng.choice(len(probes), size=min(args.queries, len(probes)), replace=False)]

    gallery = build_gallery(parts.gallery, args.size, model, args.seed)
    started = time.perf_counter()
    truth_labels, _ = exact_top_k(gallery, queries, args.k)
    truth_s = time.perf_counter() - started

    gc.collect()
    heap_before = rss_anon()
    index = make_backend(args.backend, args)
    t0 = time.perf_counter()
    add_all(index, gallery)
    if args.backend.startswith("milvus"):
        len(index)  # Strong consistency: wait until every insert is visible
    index_wait_s = 0.0
    before_index: dict[str, Any] = {}
    if args.backend == "milvus-server":
        # What a search sees before the index is served (rows just inserted): 100 queries, batched.
        early_t0 = time.perf_counter()
        got_early, _ = index.search(queries[:100], args.k)
        before_index = {"search_s": time.perf_counter() - early_t0, "recall_at_10": recall(got_early, truth_labels[:100], min(10, args.k)), "queries": 100,
                        "segments": [{"rows": rows, "indexed": indexed} for rows, indexed in index.segments()]}
        index_wait_s = index.wait_indexed()  # the query node serves the index on every segment: its latency, not a scan's
    build_s = time.perf_counter() - t0 - before_index.get("search_s", 0.0)
    server_rss_built = args.server.rss_bytes() if args.backend == "milvus-server" else 0
    gc.collect()
    heap_after = rss_anon()

    index.search(queries[:16], args.k)  # warm caches and the mapped file
    set_threads(index, args.latency_threads)
    got, latencies, cpu = one_at_a_time(index, queries, args.k)
    sweep = []
    base_params = getattr(index, "params", None)
    for ef in args.sweep or []:
        index.params = dataclasses.replace(index.params, expansion_search=ef)
        labels, wall, thread = one_at_a_time(index, queries, args.k)
        sweep.append({"expansion_search": ef, "recall_at_1": recall(labels, truth_labels, 1),
                      "recall_at_10": recall(labels, truth_labels, min(10, args.k)),
                      "p50_ms": float(np.percentile(wall, 50) * 1e3), "p50_cpu_ms": float(np.percentile(thread, 50) * 1e3)})
        if args.fpir:
            sweep[-1]["open_set"] = open_set_of(index, parts)
        print(json.dumps(sweep[-1]), file=sys.stderr)
    if base_params is not None:
        index.params = base_params
    base_search = dict(getattr(index, "search_params", {}))
    for reorder_k in args.reorder_sweep or []:  # Milvus SCANN: re-scored candidates per segment, a per-search knob
        index.search_params = {**base_search, "reorder_k": reorder_k}
        labels, wall, thread = one_at_a_time(index, queries, args.k)
        sweep.append({"reorder_k": reorder_k, "recall_at_1": recall(labels, truth_labels, 1),
                      "recall_at_10": recall(labels, truth_labels, min(10, args.k)),
                      "p50_ms": float(np.percentile(wall, 50) * 1e3), "p99_ms": float(np.percentile(wall, 99) * 1e3)})
        print(json.dumps(sweep[-1]), file=sys.stderr)
    if base_search:
        index.search_params = base_search
    set_threads(index, 0)
    # Throughput in batches of 100: ExactIndex scores a whole batch at once (Q x N floats),
    # which at 1M faces and 1000 queries would be a 4 GB matrix.
    t0 = time.perf_counter()
    for start in range(0, len(queries), 100):
        index.search(queries[start : start + 100], args.k)
    batch_s = time.perf_counter() - t0

    open_set: dict[str, Any] = {}
    if args.fpir:
        open_set[args.backend] = open_set_of(index, parts)
        open_set["exact"] = open_set_of(None, parts, gallery)
        open_set.update(mated_probes=len(parts.mated), non_mated_probes=len(parts.non_mated))

    parts_bytes = index_bytes(index)
    resident = sum(v for name, v in parts_bytes.items() if name != "mapped")
    result: dict[str, Any] = {
        "size": args.size,
        "backend": args.backend,
        "recall_at_1": recall(got, truth_labels, 1),
        "recall_at_10": recall(got, truth_labels, min(10, args.k)),
        "p50_ms": float(np.percentile(latencies, 50) * 1e3),
        "p99_ms": float(np.percentile(latencies, 99) * 1e3),
        "p50_cpu_ms": float(np.percentile(cpu, 50) * 1e3),
        "p99_cpu_ms": float(np.percentile(cpu, 99) * 1e3),
        "qps": float(len(queries) / batch_s),
        "single_query_qps": float(len(latencies) / sum(latencies)),
        "build_s": build_s,
        "bytes_per_face": resident / args.size,
        "heap_rss_bytes_per_face": (heap_after - heap_before) / args.size,
        "mapped_bytes_per_face": parts_bytes.get("mapped", 0) / args.size,
        "index_bytes": parts_bytes,
        "queries": len(queries),
        "k": args.k,
        "real_faces_in_gallery": len(parts.gallery),
        "exact_truth_s": truth_s,
        "descriptors_s": descriptors_s,
        "descriptors_cached": cached,
        "params": {k: getattr(args, k) for k in ("connectivity", "expansion_add", "expansion_search",
                                                 "rerank_factor", "quantisation", "shortlist", "vectors_dir", "milvus_index",
                                                 "latency_threads")},
        "open_set": open_set,
        "sweep": sweep,
        "threads": os.cpu_count(),
        "loadavg_at_end": os.getloadavg()[0],
    }
    if args.backend == "milvus-server":
        result["server_rss_bytes"] = args.server.rss_bytes()
        result["server_rss_bytes_per_face"] = result["server_rss_bytes"] / args.size
        result["server_rss_after_build_bytes"] = server_rss_built
        result["params"].update(nlist=args.nlist, nprobe=args.nprobe, reorder_k=args.reorder_k)
        result["server_config"] = args.server_config
        result["index_wait_s"] = index_wait_s
        result["before_index"] = before_index
        result["segments"] = [{"rows": rows, "indexed": indexed} for rows, indexed in index.segments()]
    if hasattr(index, "close"):
        index.close()
    if args.beside:
        del index
        gc.collect()
        result["beside"] = beside(args, gallery, queries, truth_labels)
    return result


def beside(args: argparse.Namespace, gallery: NDArray[np.float32], queries: NDArray[np.float32],
           truth: NDArray[np.int64]) -> dict[str, Any]:
    """The in-process ANN default on the same gallery and queries, measured the same way."""
    index = make_backend("ann", args, tenant="beside")
    t0 = time.perf_counter()
    add_all(index, gallery)
    build_s = time.perf_counter() - t0
    index.search(queries[:16], args.k)
    set_threads(index, args.latency_threads)
    got, latencies, cpu = one_at_a_time(index, queries, args.k)
    return {"backend": "ann", "recall_at_1": recall(got, truth, 1), "recall_at_10": recall(got, truth, min(10, args.k)),
            "p50_ms": float(np.percentile(latencies, 50) * 1e3), "p99_ms": float(np.percentile(latencies, 99) * 1e3),
            "p50_cpu_ms": float(np.percentile(cpu, 50) * 1e3), "build_s": build_s}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from faceward.index.milvus import SERVER_SEARCH_PARAMS  # pymilvus itself is imported only when a server is used

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=100_000, help="gallery size: real enrolled faces + distractors")
    parser.add_argument("--backend", choices=["exact", "ann", "milvus", "milvus-server"], default="ann")
    parser.add_argument("--json", action="store_true", help="print one JSON object (also written to results/)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--connectivity", type=int)
    parser.add_argument("--expansion-add", dest="expansion_add", type=int)
    parser.add_argument("--expansion-search", dest="expansion_search", type=int)
    parser.add_argument("--rerank-factor", dest="rerank_factor", type=int)
    parser.add_argument("--quantisation", choices=["pq4", "i8", "f16"], help="ann: pq4 (default: scanned 4-bit PQ codes) or an HNSW graph over i8/f16")
    parser.add_argument("--shortlist", type=int, help="ann pq4: candidates re-ranked exactly per query")
    parser.add_argument("--latency-threads", dest="latency_threads", type=int, default=0,
                        help="ann: threads for the single-query latency loop (0: every core, as the service runs; 1: one core)")
    parser.add_argument("--vectors-dir", dest="vectors_dir", help="ann: memory-map the float32 re-rank rows here")
    parser.add_argument("--milvus-uri", dest="milvus_uri", default=str(CACHE / "milvus-bench.db"))
    parser.add_argument("--milvus-index", dest="milvus_index", help="default: SCANN on a server, AUTOINDEX on milvus-lite")
    parser.add_argument("--nlist", type=int, default=16, help="milvus SCANN: inverted lists")
    parser.add_argument("--nprobe", type=int, default=16, help="milvus SCANN: lists searched")
    parser.add_argument("--reorder-k", dest="reorder_k", type=int, default=SERVER_SEARCH_PARAMS["reorder_k"],
                        help="milvus SCANN: candidates re-scored exactly, per segment (default: MilvusIndex's)")
    parser.add_argument("--interim-index", dest="interim_index", action="store_true",
                        help="milvus-server: leave Milvus's interim IVF on unindexed segments on (its default; faceward turns it off)")
    parser.add_argument("--no-beside", dest="beside", action="store_false",
                        help="milvus-server: skip measuring the in-process ANN on the same gallery")
    parser.add_argument("--sweep", type=int, nargs="*", help="ann: also measure these expansion_search values")
    parser.add_argument("--reorder-sweep", dest="reorder_sweep", type=int, nargs="*",
                        help="milvus SCANN: also measure these reorder_k values on the same index")
    parser.add_argument("--fpir", action="store_true", help="also FNIR at FPIR 0.01/0.001 (lfw-dev probes)")
    parser.add_argument("--tag", help="suffix for the results/ file name")
    parser.add_argument("--prepare", action="store_true", help="only compute and cache the lfw-dev descriptors")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.prepare:
        real = real_descriptors()
        print(json.dumps({"descriptors": len(real.vectors), "identities": len(set(real.identity.tolist()))}))
        return
    if args.backend == "milvus-server":
        from faceward.index.milvus_server import REQUIRED_CONFIG, MilvusStandalone

        extra = {"queryNode.segcore.interimIndex.enableIndex": True} if args.interim_index else {}
        args.server_config = {**REQUIRED_CONFIG, **extra}
        with MilvusStandalone(CACHE / "milvus-server-data", extra=extra) as server:
            args.server, args.milvus_uri = server, server.uri
            if args.milvus_index is None:
                args.milvus_index = "SCANN"
            result = run(args)
        del args.server
        _write(args, result)
        return
    args.beside = False
    if args.backend == "milvus" and Path(args.milvus_uri).exists():  # a fresh collection (lite: a file or a folder)
        target = Path(args.milvus_uri)
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    result = run(args)
    _write(args, result)


def _write(args: argparse.Namespace, result: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    suffix = f"-{args.tag}" if getattr(args, "tag", None) else ""
    (RESULTS / f"scale-{args.backend}-{args.size}{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
