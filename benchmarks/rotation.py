"""Online master-key rotation under load: `faceward keys rotate-master` with the key in a SoftHSM2 token
while benchmarks/load.py's client mix (search, verify, enroll) runs against `faceward serve`.

Reports every request's status before, during and after the rotation; "loses no request" means no
status other than 2xx anywhere. Needs SoftHSM2 (Debian softhsm2) and the ``bench`` and ``hsm`` extras.

    python benchmarks/rotation.py --tenants 20 --concurrency 8 --seconds 40 --out docs/benchmarks/rotation-2026-12-01.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import aiohttp  # noqa: E402
from load import HIGH_LIMITS, Load, Sample, Target, bootstrap, pct, photo_set, seed  # noqa: E402

MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def token_env(root: Path) -> dict[str, str]:
    (root / "tokens").mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", "2468", "--so-pin", "1357"],
                   env={**os.environ, "SOFTHSM2_CONF": str(conf)}, check=True, capture_output=True)
    pin = root / "pin"
    pin.write_text("2468\n")
    pin.chmod(0o600)
    return {"SOFTHSM2_CONF": str(conf), "FACEWARD_KMS": "pkcs11", "FACEWARD_PKCS11_MODULE": MODULE,
            "FACEWARD_PKCS11_TOKEN": "bench", "FACEWARD_PKCS11_PIN_FILE": str(pin)}


class StampedLoad(Load):
    """load.py's client mix, each sample stamped with the moment it completed (to phase it against the rotation)."""

    stamps: dict[int, float]

    async def one(self, client: aiohttp.ClientSession, rng: Any) -> Sample:
        sample = await super().one(client, rng)
        self.stamps[id(sample)] = time.monotonic()
        return sample


def phases(samples: list[Sample], stamps: dict[int, float], start: float, end: float) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {"before": {}, "during": {}, "after": {}}
    for s in samples:
        at = stamps[id(s)]
        phase = "before" if at < start else "during" if at <= end else "after"
        out[phase][str(s.status)] = out[phase].get(str(s.status), 0) + 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=20, help="extra tenants whose keys the rotation re-wraps")
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="fw-rotation-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEWARD_")}
    env.update({"FACEWARD_HOME": str(scratch / "home"), **HIGH_LIMITS, **token_env(scratch / "hsm")})
    cli = [sys.executable, "-m", "faceward.cli.main"]
    subprocess.run([*cli, "init"], env=env, check=True, capture_output=True)
    keys = bootstrap(env)
    for n in range(args.tenants):
        subprocess.run([*cli, "tenant", "create", f"tenant {n}"], env=env, check=True, capture_output=True)
    target = Target("sqlite", env, 1)
    target.log = scratch / "serve.log"
    target.start({})
    rotation: dict[str, Any] = {}
    try:
        gallery, probes = photo_set(args.subjects)
        seeded = seed(target.url, keys, gallery)
        load = StampedLoad(target.url, keys, seeded, probes, {"search": 0.8, "verify": 0.1, "enroll": 0.1})
        load.stamps = {}

        def rotate() -> None:
            time.sleep(args.seconds / 3)
            rotation["started"] = time.monotonic()
            done = subprocess.run([*cli, "keys", "rotate-master", "--json"], env=env, capture_output=True, text=True)
            rotation["ended"] = time.monotonic()
            rotation["result"] = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-500:]}

        rotator = threading.Thread(target=rotate)
        began = time.monotonic()
        rotator.start()
        samples, wall = asyncio.run(load.run(args.concurrency, args.seconds))
        rotator.join()
    finally:
        target.stop()
    statuses: dict[str, int] = {}
    for s in samples:
        statuses[str(s.status)] = statuses.get(str(s.status), 0) + 1
    ok = [s.seconds for s in samples if 200 <= s.status < 300]
    report = {
        "benchmark": "online master-key rotation under load (SoftHSM2 token, faceward serve, SQLite)",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "command": " ".join(sys.argv),
        "tenants_rewrapped": rotation.get("result"),
        "rotation_seconds": round(rotation["ended"] - rotation["started"], 2) if "ended" in rotation else None,
        "rotation_started_at_s": round(rotation["started"] - began, 2) if "started" in rotation else None,
        "rotation_within_load": "ended" in rotation and rotation["ended"] - began < wall,
        "load_seconds": round(wall, 2), "concurrency": args.concurrency, "requests": len(samples),
        "status_counts": statuses, "non_2xx": len(samples) - len(ok),
        "status_by_phase": phases(samples, load.stamps, rotation["started"], rotation["ended"]) if "ended" in rotation else None,
        "ok_p50_ms": pct(ok, 50), "ok_p99_ms": pct(ok, 99),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
