"""What a restart costs a tenant's first search: its index rebuilt from the store.

A server keeps no index on disk (decision 026): after a restart the first search of a tenant
rebuilds that tenant's index from the store (every template opened through the vault, then the
configured backend built). This measures that rebuild on a SQLite gallery of ``--faces`` faces
(``--faces-per-subject`` each, synthetic unit descriptors, enrolled through the same use case as
the API) in a fresh service graph, i.e. with empty key caches, as after a restart:

    python benchmarks/restart.py --faces 20000 --json-out results/restart.json

It reports the seconds and faces per second of the rebuild, split into opening the templates
and building the index, for the backend in ``--backend`` (default the product default).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from faceward.security.crypto import Keyring  # noqa: E402
from faceward.services.consent import Consent  # noqa: E402
from faceward.services.gallery import GalleryService  # noqa: E402
from faceward.services.ids import utcnow  # noqa: E402
from faceward.settings import IndexBackend, Settings  # noqa: E402
from faceward.store import SqlStore  # noqa: E402
from faceward.vision.types import Quality  # noqa: E402

GOOD = Quality(face_px=120, sharpness=80.0, detector_score=1.0, frontalness=0.95)
BOX = {"left": 10, "top": 10, "right": 130, "bottom": 130}


def engine() -> Any:
    """What enrollment by descriptor asks of an engine: its templates' id and size (no model is loaded)."""
    return SimpleNamespace(template_id="dlib-resnet-v1/flip", embedding_size=128, manifest=None)


def graph(url: str, home: Path, master: bytes, backend: IndexBackend) -> GalleryService:
    return GalleryService(SqlStore.open(url), Keyring(master), Settings(home=home, index_backend=backend), engine=engine())


def populate(g: GalleryService, faces: int, per_subject: int) -> str:
    tenant = g.create_tenant("bench")
    rng = np.random.default_rng(0)
    now = utcnow()
    consent = Consent.build("explicit_consent", "form-1", now, None, now=now)
    n = 0
    while n < faces:
        subject = g.create_subject(tenant, f"subject {n}", consent)
        for _ in range(min(per_subject, faces - n)):
            v = rng.standard_normal(128).astype(np.float32)
            g.admit(tenant, subject.id, v / np.linalg.norm(v), GOOD, BOX, f"{n:064x}", 1)
            n += 1
    return tenant


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=20_000)
    parser.add_argument("--faces-per-subject", type=int, default=2)
    parser.add_argument("--backend", default=IndexBackend.ANN.value, choices=[IndexBackend.ANN.value, IndexBackend.EXACT.value])
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    backend = IndexBackend(args.backend)
    with tempfile.TemporaryDirectory() as tmp:
        home, master = Path(tmp) / "home", os.urandom(32)
        url = f"sqlite:///{Path(tmp) / 'faceward.db'}"
        started = time.perf_counter()
        first = graph(url, home, master, backend)
        tenant = populate(first, args.faces, args.faces_per_subject)
        enrolled_s = time.perf_counter() - started
        first.store.close()

        restarted = graph(url, home, master, backend)  # a fresh graph: empty key caches, no index
        records = restarted.store.faces_since(tenant, 0, limit=args.faces + 1)
        t0 = time.perf_counter()
        vectors = restarted.templates.open(records)
        opened_s = time.perf_counter() - t0
        index = restarted.index_factory(tenant)
        t1 = time.perf_counter()
        index.add(np.array([r.seq for r in records], dtype=np.int64), vectors)
        built_s = time.perf_counter() - t1
        restarted.forget_keys()
        t2 = time.perf_counter()
        restarted.indexes.get(tenant)  # what the first search after a restart does, end to end
        first_search_s = time.perf_counter() - t2
        restarted.store.close()
    result = {
        "faces": args.faces, "faces_per_subject": args.faces_per_subject, "backend": backend.value,
        "enroll_s": round(enrolled_s, 2), "open_templates_s": round(opened_s, 3), "build_index_s": round(built_s, 3),
        "first_search_rebuild_s": round(first_search_s, 3),
        "rebuild_faces_per_s": round(args.faces / first_search_s), "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
