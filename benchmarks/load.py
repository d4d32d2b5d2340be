"""Load test of the REST API on loopback: throughput, latency, errors, behaviour above saturation, memory over a soak.

Targets (each started fresh, in a temporary home, by this script):

* ``sqlite``   - the embedded default: ``faceward serve`` (one process, SQLite in the home);
* ``postgres`` - PostgreSQL (a fresh schema) behind ``uvicorn faceward.api.app:create_app --factory
  --workers N``: several worker processes sharing one store.

Phases per target:

1. **sweep** - closed loop: ``c`` clients, each sending its next request as soon as the last one
   answered, for each ``c`` in ``--concurrency``; the mix is mostly searches, some verifications and
   some enrollments (``--mix``). Throughput (2xx/s), p50/p90/p99 latency of 2xx, errors by status.
2. **overload** - the server restarted with a per-key rate limit below the capacity the sweep
   measured, then driven at the highest concurrency: what fraction is refused with 429, whether every
   429/503 carries ``Retry-After``, and how fast refusals and admitted requests are.
3. **tenant flood** - (``--flood`` clients) a second tenant floods searches with blank 2000x2000
   PNGs while a probe of the first tenant searches every 100 ms; its p50 against the same probe idle.
4. **soak** - (``--soak`` seconds, first target only unless ``--soak-all``) at moderate concurrency,
   sampling the resident memory of the server and its workers every 5 s.

Clients are ``aiohttp`` coroutines (the ``bench`` extra: ``pip install -e '.[bench]'``). The load generator shares the
machine with the server, so on a small machine it competes for the same cores: read the numbers as
"this box, this configuration".

    python benchmarks/load.py --targets sqlite,postgres --workers 3 --soak 120 --out results/load.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

DEFAULT_PG = os.environ.get("FACEWARD_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
LFW = Path(os.environ.get("FACEWARD_LFW_DIR", REPO.parent / "shared" / "datasets" / "lfw-dev"))
HIGH_LIMITS = {"FACEWARD_RATE_PER_MINUTE": "10000000", "FACEWARD_RATE_BURST": "1000000", "FACEWARD_SEARCHES_PER_DAY": "100000000"}


# -- images ------------------------------------------------------------------------------------


def with_comment(jpeg: bytes, note: bytes) -> bytes:
    """The same JPEG with a COM segment after SOI: identical pixels, a different SHA-256 (a new enrollment)."""
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + jpeg[2:]


def photo_set(subjects: int) -> tuple[list[bytes], list[bytes]]:
    """Gallery photos (one per subject) and probe photos: lfw-dev when present, else astronaut variants."""
    people = []
    if (LFW / "images").is_dir():
        for person in sorted(p for p in (LFW / "images").iterdir() if p.is_dir()):
            photos = sorted(person.glob("*.jpg"))
            if len(photos) >= 2:
                people.append((photos[0].read_bytes(), photos[1].read_bytes()))
            if len(people) == subjects:
                break
    if len(people) < subjects:
        from skimage import data

        face = data.astronaut()[0:300, 80:380]
        rng = np.random.default_rng(1)
        while len(people) < subjects:
            pair = []
            for _ in range(2):
                shifted = np.clip(face.astype(np.int16) + int(rng.integers(-20, 21)), 0, 255).astype(np.uint8)
                buffer = io.BytesIO()
                Image.fromarray(shifted).save(buffer, format="JPEG", quality=90)
                pair.append(buffer.getvalue())
            people.append((pair[0], pair[1]))
    return [a for a, _ in people], [b for _, b in people]


# -- the server under test ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` alone, in MiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:")) / 1024
    except (OSError, StopIteration):
        return 0.0


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, in MiB (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            with open(f"/proc/{current}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


@dataclass
class Target:
    name: str
    env: dict[str, str]
    workers: int
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, extra_env: dict[str, str]) -> float:
        env = {**self.env, **extra_env}
        if self.name == "sqlite":
            args = [sys.executable, "-m", "faceward.cli.main", "serve", "--port", str(self.port)]
        else:
            args = [sys.executable, "-m", "uvicorn", "faceward.api.app:create_app", "--factory", "--host", "127.0.0.1",
                    "--port", str(self.port), "--workers", str(self.workers), "--log-level", "warning"]
        assert self.log is not None
        began = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return time.monotonic() - began
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None


def bootstrap(env: dict[str, str], name: str = "load test") -> dict[str, str]:
    """A tenant and its keys, made in-process as the operator would (``faceward tenant create``)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        from faceward.bootstrap import init_home, open_accounts
        from faceward.security.permissions import Role
        from faceward.settings import load_settings

        settings = load_settings()
        if settings.database_url is None:
            init_home(settings)
        accounts = open_accounts(settings)
        tenant_id, _admin = accounts.create_tenant(name)
        keys = {"tenant": tenant_id}
        for role in (Role.ENROLLER, Role.SEARCHER):
            _, secret = accounts.create_key(tenant_id, role, f"load {role.value}", None, actor="operator", source="bench")
            keys[role.value] = secret
        accounts.gallery.store.close()
        return keys
    finally:
        os.environ.clear()
        os.environ.update(saved)


# -- the load ---------------------------------------------------------------------------------


@dataclass
class Sample:
    op: str
    status: int  # 0: connection error or timeout
    seconds: float
    retry_after: str | None


class Load:
    def __init__(self, url: str, keys: dict[str, str], seeded: list[tuple[str, bytes]], probes: list[bytes],
                 mix: dict[str, float], probe_type: tuple[str, str] = ("p.jpg", "image/jpeg")) -> None:
        """``seeded``: (subject id, an accepted photo of that subject); enrollments add new copies of those photos."""
        self.url, self.keys, self.seeded, self.probes = url, keys, seeded, probes
        self.probe_type = probe_type
        self.subjects = [s for s, _ in seeded]
        self.ops = list(mix)
        self.weights = [mix[o] for o in self.ops]
        self.counter = 0

    async def one(self, client: aiohttp.ClientSession, rng: random.Random) -> Sample:
        op = rng.choices(self.ops, self.weights)[0]
        probe = rng.choice(self.probes)
        form = aiohttp.FormData()
        if op == "search":
            url, key = "/v1/search", self.keys["searcher"]
            form.add_field("image", probe, filename=self.probe_type[0], content_type=self.probe_type[1])
            for name, value in (("purpose", "load test"), ("case_reference", "bench"), ("k", "5")):
                form.add_field(name, value)
        elif op == "verify":
            url, key = "/v1/verify", self.keys["searcher"]
            form.add_field("image", probe, filename="p.jpg", content_type="image/jpeg")
            form.add_field("subject_id", rng.choice(self.subjects))
        else:
            self.counter += 1
            subject, photo = rng.choice(self.seeded)
            photo = with_comment(photo, f"load-{self.counter}-{uuid.uuid4().hex}".encode())
            url, key = f"/v1/subjects/{subject}/faces", self.keys["enroller"]
            form.add_field("image", photo, filename="e.jpg", content_type="image/jpeg")
        began = time.perf_counter()
        try:
            async with client.post(url, data=form, headers={"Authorization": f"Bearer {key}"}) as response:
                await response.read()
                status, retry = response.status, response.headers.get("retry-after")
        except (aiohttp.ClientError, asyncio.TimeoutError):
            status, retry = 0, None
        return Sample(op, status, time.perf_counter() - began, retry)

    async def run(self, concurrency: int, seconds: float, seed: int = 0) -> tuple[list[Sample], float]:
        samples: list[Sample] = []
        # aiohttp rather than httpx: at c=64 httpx's own per-request cost (a pool scan over every
        # connection, a failed import per request) made the generator, not the server, the bottleneck.
        connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
        timeout = aiohttp.ClientTimeout(total=60.0)
        async with aiohttp.ClientSession(base_url=self.url, connector=connector, timeout=timeout) as client:
            deadline = time.monotonic() + seconds

            async def worker(n: int) -> None:
                rng = random.Random(seed * 1000 + n)
                while time.monotonic() < deadline:
                    samples.append(await self.one(client, rng))

            began = time.monotonic()
            await asyncio.gather(*(worker(n) for n in range(concurrency)))
            return samples, time.monotonic() - began


def probe(url: str, key: str, image: Path, seconds: float) -> dict[str, Any]:
    """What one light client sees meanwhile: a search every 100 ms, from its own process.

    The generator's own figures above saturation include its queueing on the shared cores (it
    runs hundreds of requests a second through one event loop); this probe does not.
    """
    photo, timings, statuses = image.read_bytes(), [], {}
    headers = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=60.0) as client:
        while time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                status = client.post("/v1/search", headers=headers, files={"image": ("p.jpg", photo, "image/jpeg")},
                                     data={"purpose": "load probe", "case_reference": "bench", "k": "5"}).status_code
            except httpx.HTTPError:
                status = 0
            timings.append((status, time.perf_counter() - began))
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            time.sleep(0.1)
    refused = [t for st, t in timings if st in (429, 503)]
    admitted = [t for st, t in timings if 200 <= st < 300]
    return {"requests": len(timings), "status_counts": statuses, "refused_p50_ms": pct(refused, 50),
            "refused_p99_ms": pct(refused, 99), "ok_p50_ms": pct(admitted, 50), "ok_p99_ms": pct(admitted, 99)}


def start_probe(url: str, key: str, photo: bytes, seconds: float, scratch: Path) -> subprocess.Popen[bytes]:
    image = scratch / "probe.jpg"
    image.write_bytes(photo)
    return subprocess.Popen([sys.executable, __file__, "--probe", url, key, str(image), str(seconds)],
                            stdout=subprocess.PIPE)


def probe_result(process: subprocess.Popen[bytes]) -> dict[str, Any]:
    out, _ = process.communicate(timeout=120)
    return json.loads(out) if process.returncode == 0 else {"error": f"probe exited {process.returncode}"}


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(float(np.percentile(np.array(values) * 1000.0, q)), 1)


def summarise(samples: list[Sample], wall: float, concurrency: int) -> dict[str, Any]:
    ok = [s for s in samples if 200 <= s.status < 300]
    statuses: dict[str, int] = {}
    for s in samples:
        statuses[str(s.status)] = statuses.get(str(s.status), 0) + 1
    refused = [s for s in samples if s.status in (429, 503)]
    by_op = {}
    for op in sorted({s.op for s in samples}):
        mine = [s.seconds for s in ok if s.op == op]
        by_op[op] = {"ok": len(mine), "p50_ms": pct(mine, 50), "p99_ms": pct(mine, 99)}
    return {
        "concurrency": concurrency,
        "seconds": round(wall, 1),
        "requests": len(samples),
        "ok": len(ok),
        "throughput_rps": round(len(ok) / wall, 2) if wall else 0.0,
        "p50_ms": pct([s.seconds for s in ok], 50),
        "p90_ms": pct([s.seconds for s in ok], 90),
        "p99_ms": pct([s.seconds for s in ok], 99),
        "errors": sum(1 for s in samples if s.status == 0 or s.status >= 500),
        "client_errors": sum(1 for s in samples if 400 <= s.status < 500 and s.status != 429),
        "status_counts": statuses,
        "refused": len(refused),
        "refused_p50_ms": pct([s.seconds for s in refused], 50),
        "refused_p99_ms": pct([s.seconds for s in refused], 99),
        "refused_with_retry_after": sum(1 for s in refused if s.retry_after),
        "by_op": by_op,
    }


# -- one target, start to end ---------------------------------------------------------------------


def pg_schema(url: str) -> tuple[str, str]:
    import psycopg

    schema = "bench_" + uuid.uuid4().hex[:10]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{url}?options=-csearch_path%3D{schema}", schema


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def bench_target(name: str, args: argparse.Namespace, soak: float) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix=f"faceward-load-{name}-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEWARD_")}
    env.update({"FACEWARD_HOME": str(scratch / "home"), "FACEWARD_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
                "PYTHONPATH": str(REPO / "src")})
    schema = None
    if name == "postgres":
        env["FACEWARD_DATABASE_URL"], schema = pg_schema(args.pg_url)
    target = Target(name, env, args.workers if name == "postgres" else 1, log=scratch / "server.log")
    result: dict[str, Any] = {"target": name, "workers": target.workers}
    try:
        keys = bootstrap(env)
        gallery, probes = photo_set(args.subjects)
        result["startup_seconds"] = round(target.start(HIGH_LIMITS), 2)
        seeded = seed(target.url, keys, gallery)
        subjects = [s for s, _ in seeded]
        result["gallery"] = {"subjects": len(subjects), "faces": len(subjects)}
        mix = dict(zip(("search", "verify", "enroll"), (float(x) for x in args.mix.split(","))))
        load = Load(target.url, keys, seeded, probes, mix)
        result["mix"] = mix
        asyncio.run(load.run(2, 3.0))  # warm-up: every worker loads its models and index
        sweep = []
        for c in args.concurrency:
            # The probe is one more client: only where the sweep is past saturation anyway.
            watcher = start_probe(target.url, keys["searcher"], probes[0], args.duration, scratch) \
                if c == max(args.concurrency) else None
            samples, wall = asyncio.run(load.run(c, args.duration, seed=c))
            sweep.append({**summarise(samples, wall, c), "probe": probe_result(watcher) if watcher else None})
            print(f"[{name}] c={c}: {sweep[-1]['throughput_rps']} rps, p50 {sweep[-1]['p50_ms']} ms, "
                  f"p99 {sweep[-1]['p99_ms']} ms, errors {sweep[-1]['errors']}, refused {sweep[-1]['refused']}; "
                  f"probe {sweep[-1]['probe']}", flush=True)
        result["sweep"] = sweep
        capacity = max(s["throughput_rps"] for s in sweep)
        result["capacity_rps"] = capacity

        if args.flood > 0:
            result["tenant_flood"] = tenant_flood(target, env, keys, probes[0], args, scratch)

        if soak > 0:
            pid = target.proc.pid  # type: ignore[union-attr]
            rss = [(0.0, round(tree_rss_mb(pid), 1))]
            server_rss = [round(rss_mb(pid), 1)]  # the API process alone (without its analysis workers)
            began = time.monotonic()

            async def soak_run() -> list[Sample]:
                task = asyncio.create_task(load.run(args.soak_concurrency, soak, seed=99))
                while not task.done():
                    await asyncio.sleep(5)
                    rss.append((round(time.monotonic() - began, 1), round(tree_rss_mb(pid), 1)))
                    server_rss.append(round(rss_mb(pid), 1))
                return (await task)[0]

            samples = asyncio.run(soak_run())
            values = [m for _, m in rss]
            half = values[len(values) // 2 :]
            result["soak"] = {
                "seconds": soak, "concurrency": args.soak_concurrency, **summarise(samples, soak, args.soak_concurrency),
                "rss_mb": {"start": values[0], "end": values[-1], "max": max(values),
                           "second_half_slope_mb_per_min": round((half[-1] - half[0]) / max(1e-9, (rss[-1][0] - rss[len(rss) // 2][0]) / 60), 2)
                           if len(half) > 1 else None},
                "rss_samples": rss,
                "api_process_rss_samples": server_rss,
            }
            print(f"[{name}] soak {soak:.0f}s: rss {values[0]} -> {values[-1]} MiB (max {max(values)})", flush=True)

        # Above saturation: admit about half the measured capacity per key, drive it hard.
        target.stop()
        # Two keys share the load (searcher, enroller), and each worker process keeps its own token buckets
        # (services.ratelimit is in-process), so a key's effective limit is workers x the setting.
        per_minute = max(6, int(capacity * 60 * 0.5 / 2 / target.workers))
        limits = {"FACEWARD_RATE_PER_MINUTE": str(per_minute), "FACEWARD_RATE_BURST": "5",
                  "FACEWARD_SEARCHES_PER_DAY": "100000000"}
        target.start(limits)
        asyncio.run(load.run(2, 2.0))
        watcher = start_probe(target.url, keys["searcher"], probes[0], args.duration, scratch)
        samples, wall = asyncio.run(load.run(max(args.concurrency), args.duration, seed=7))
        over = {**summarise(samples, wall, max(args.concurrency)), "probe": probe_result(watcher)}
        over["rate_per_minute_per_key_per_worker"] = per_minute
        over["offered_concurrency"] = max(args.concurrency)
        result["overload"] = over
        print(f"[{name}] overload: {over['status_counts']}, refused p99 {over['refused_p99_ms']} ms, "
              f"with Retry-After {over['refused_with_retry_after']}/{over['refused']}, admitted p99 {over['p99_ms']} ms; "
              f"probe: {over['probe']}", flush=True)
    finally:
        target.stop()
        if schema is not None:
            drop_schema(args.pg_url, schema)
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return result


def blank_png(side: int = 2000) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (255, 255, 255)).save(buffer, format="PNG")
    return buffer.getvalue()


def tenant_flood(target: Target, env: dict[str, str], keys: dict[str, str], photo: bytes, args: argparse.Namespace,
                 scratch: Path) -> dict[str, Any]:
    """Tenant isolation: another tenant floods searches with blank 2000x2000 PNGs (``--flood`` clients)
    while the probe (this tenant, a search every 100 ms) is timed; the same probe idle just before."""
    idle = probe_result(start_probe(target.url, keys["searcher"], photo, args.duration, scratch))
    flooder = bootstrap(env, "flooding tenant")
    load = Load(target.url, {"searcher": flooder["searcher"]}, [], [blank_png()], {"search": 1.0}, ("b.png", "image/png"))
    watcher = start_probe(target.url, keys["searcher"], photo, args.duration, scratch)
    samples, wall = asyncio.run(load.run(args.flood, args.duration, seed=5))
    loaded = probe_result(watcher)
    ratio = (loaded["ok_p50_ms"] / idle["ok_p50_ms"]) if loaded.get("ok_p50_ms") and idle.get("ok_p50_ms") else None
    out = {"flood_clients": args.flood, "flood": summarise(samples, wall, args.flood), "probe_idle": idle,
           "probe_during_flood": loaded, "probe_p50_ratio": round(ratio, 2) if ratio else None}
    print(f"[{target.name}] tenant flood: {out['flood']['status_counts']}; probe p50 {idle.get('ok_p50_ms')} ms idle, "
          f"{loaded.get('ok_p50_ms')} ms during the flood (x{out['probe_p50_ratio']})", flush=True)
    return out


def seed(url: str, keys: dict[str, str], photos: list[bytes]) -> list[tuple[str, bytes]]:
    """One subject per photo; returns ``(subject id, photo)`` for those whose photo was accepted."""
    subjects = []
    headers = {"Authorization": f"Bearer {keys['enroller']}"}
    now = datetime.now(timezone.utc).isoformat()
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        for n, photo in enumerate(photos):
            body = {"display_name": f"Person {n}", "consent": {"basis": "explicit_consent", "reference": f"bench-{n}", "given_at": now}}
            response = client.post("/v1/subjects", json=body)
            response.raise_for_status()
            subject = response.json()["id"]
            enrolled = client.post(f"/v1/subjects/{subject}/faces", files={"image": ("s.jpg", photo, "image/jpeg")})
            if enrolled.status_code in (200, 201):
                subjects.append((subject, photo))
    if not subjects:
        raise RuntimeError("no gallery photo could be enrolled")
    return subjects


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--probe":
        print(json.dumps(probe(sys.argv[2], sys.argv[3], Path(sys.argv[4]), float(sys.argv[5]))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--workers", type=int, default=3, help="uvicorn workers for the PostgreSQL target")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 16, 64])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per sweep step and for the overload phase")
    parser.add_argument("--mix", default="0.8,0.1,0.1", help="search,verify,enroll weights")
    parser.add_argument("--subjects", type=int, default=30)
    parser.add_argument("--soak", type=float, default=120.0, help="soak seconds (0: none)")
    parser.add_argument("--soak-concurrency", type=int, default=8)
    parser.add_argument("--soak-all", action="store_true", help="soak every target, not only the first")
    parser.add_argument("--flood", type=int, default=8,
                        help="tenant isolation phase: clients of another tenant sending blank 2000x2000 PNGs (0: none)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary homes and server logs")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    started = datetime.now(timezone.utc)
    report: dict[str, Any] = {
        "benchmark": "load", "started": started.isoformat(), "host": platform.node(), "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(), "python": platform.python_version(),
        "note": "client and server share this machine; closed-loop clients",
        "targets": [],
    }
    for n, name in enumerate(t.strip() for t in args.targets.split(",") if t.strip()):
        soak = args.soak if (n == 0 or args.soak_all) else 0.0
        report["targets"].append(bench_target(name, args, soak))
    report["load_average_at_end"] = os.getloadavg()
    out = args.out or REPO / "results" / f"load-{started.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
