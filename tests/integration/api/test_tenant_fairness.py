"""One tenant flooding the analysis workers with blank 2000x2000 PNGs does not hold up another's search.

The app analyses in two worker processes (``FACEWARD_ANALYSIS_WORKERS=2``), as
``faceward serve`` does; tenant A's uploads may use one worker at a time and
queue one, past which A gets 503 with ``Retry-After``. Tenant B's searches are
timed idle and then during A's flood, through HTTP, in the same run.
"""

from __future__ import annotations

import io
import statistics
import threading
import time
from pathlib import Path

import numpy as np
from apiworld import GENEROUS, Api, make_settings, make_world
from PIL import Image

from faceward.api.app import create_app
from faceward.security.permissions import Role
from faceward.vision.types import Face

FORM = {"purpose": "identify a witness for case review", "case_reference": "CASE-2026-0042"}


def blank_png(side: int = 2000) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((side, side, 3), 255, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_flood_of_blank_uploads_leaves_another_tenants_search_fast(
    tmp_path: Path, astronaut_face: Face, astronaut_jpeg: bytes, astronaut_probe: bytes
) -> None:
    settings = make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'fw.db'}", analysis_workers=2,
                             analysis_per_tenant=1, analysis_queue_per_tenant=1)
    app = create_app(settings, limits=GENEROUS)
    world = make_world(app, astronaut_face, {"astronaut": astronaut_jpeg})
    flooder, searcher = world.own, world.foreign
    remote = world.services.gallery.remote
    assert remote is not None

    def search() -> float:
        started = time.perf_counter()
        found = world.api.post("/v1/search", headers=searcher.auth(Role.SEARCHER), data=FORM,
                               files={"image": ("probe.jpg", astronaut_probe, "image/jpeg")})
        assert found.status_code == 200, found.text
        return time.perf_counter() - started

    blank = blank_png()
    statuses: list[int] = []
    retry_after: list[str] = []
    stop = threading.Event()

    def flood() -> None:
        api = Api(app)
        try:
            while not stop.is_set():
                answer = api.post("/v1/search", headers=flooder.auth(Role.SEARCHER), data=FORM,
                                  files={"image": ("blank.png", blank, "image/png")})
                statuses.append(answer.status_code)
                if answer.status_code == 503:
                    retry_after.append(answer.headers.get("retry-after", ""))
                    time.sleep(0.1)  # a client that retries at once, ignoring Retry-After
        finally:
            api.close()

    try:
        search()  # warm both paths
        idle = statistics.median(search() for _ in range(7))
        threads = [threading.Thread(target=flood, daemon=True) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        loaded = statistics.median(search() for _ in range(7))
        stop.set()
        for thread in threads:
            thread.join(30)
    finally:
        stop.set()
        world.api.close()
        remote.close()
        world.services.gallery.store.close()
    assert 422 in statuses  # A's uploads were analysed (no face) ...
    assert 503 in statuses and all(v.isdigit() and int(v) >= 1 for v in retry_after)  # ... or refused at once
    assert loaded <= 3 * idle, f"B's search took {loaded:.3f} s under A's flood, {idle:.3f} s idle"
