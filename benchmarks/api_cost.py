"""What one search costs through the API, by upload: a 250x250 portrait, a 12 MP photo (plain JPEG, a
phone's multi-picture JPEG, MPO, and a progressive JPEG, refused from its header since decision 036), the
same photo as an 8.3 MP progressive JPEG (3325x2494, the largest 4:3 one accepted), a blank 2000x2000 PNG,
and the large lossless uploads a hostile client can send for a few KB: PNG and WebP files, blank or ruled
with thin lines (not flat, so detection runs), which no DCT scaling can shrink before decoding, at
3840x2160 (8.3 MP, the largest PNG or WebP accepted since decision 036) and at 6300x6300 (40 MP: under
the pixel cap for a JPEG, refused from its header for PNG and WebP since decision 012's addendum; it was
decoded whole before).

The app is built as ``faceward serve`` builds it (analysis in a worker process,
SQLite store) and called in-process over httpx's ASGI transport; the
uploads alternate, ``--rounds`` times, and each is reported as its median
latency and its ratio to the portrait's (same run). The blank and ruled images answer
422 (no face), or 413 where refused: the cost is the analysis that found none, or the refusal.

    python benchmarks/api_cost.py ../shared/datasets/lfw-dev --rounds 9 --json-out docs/benchmarks/api-cost-2026-12-01.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from faceward.api.app import create_app  # noqa: E402
from faceward.security.permissions import Role  # noqa: E402
from faceward.services.operations import Limits  # noqa: E402
from faceward.settings import Settings  # noqa: E402

FORM = {"purpose": "benchmark of upload cost", "case_reference": "BENCH-1"}


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "MPO":  # a phone's "JPEG": the photo, then a gain map (here a quarter-size picture)
        image.save(buffer, format=fmt, quality=90, save_all=True, append_images=[image.reduce(4)])
    elif fmt == "PROGRESSIVE":  # as web pages serve JPEGs: every coefficient buffered before the output
        image.save(buffer, format="JPEG", quality=90, progressive=True)
    elif fmt == "WEBP_LOSSLESS":
        image.save(buffer, format="WEBP", lossless=True)
    else:
        image.save(buffer, format=fmt, quality=90) if fmt == "JPEG" else image.save(buffer, format=fmt)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lfw", type=Path)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    from skimage import data as skdata

    photo = Image.fromarray(skdata.astronaut()).resize((4032, 3024), Image.Resampling.BICUBIC)
    uploads = {
        "portrait_250": ((args.lfw / "images" / "Aaron_Sorkin" / "Aaron_Sorkin_0001.jpg").read_bytes(), "image/jpeg"),
        "photo_12mp": (encode(photo, "JPEG"), "image/jpeg"),
        "photo_12mp_mpo": (encode(photo, "MPO"), "image/jpeg"),
        "photo_12mp_progressive": (encode(photo, "PROGRESSIVE"), "image/jpeg"),  # refused: over 8.3 MP
        "photo_8mp_progressive": (encode(photo.resize((3325, 2494), Image.Resampling.BICUBIC), "PROGRESSIVE"),
                                  "image/jpeg"),
        "blank_2000_png": (encode(Image.fromarray(np.full((2000, 2000, 3), 255, np.uint8)), "PNG"), "image/png"),
    }
    for (width, height), size in (((3840, 2160), "8mp"), ((6300, 6300), "40mp")):  # accepted; refused
        ruled = np.full((height, width, 3), 255, np.uint8)
        ruled[::50] = 0
        for name, pixels in ((f"blank_{size}", np.full_like(ruled, 255)), (f"ruled_{size}", ruled)):
            uploads[f"{name}_png"] = (encode(Image.fromarray(pixels), "PNG"), "image/png")
            uploads[f"{name}_webp"] = (encode(Image.fromarray(pixels), "WEBP_LOSSLESS"), "image/webp")
    home = Path(tempfile.mkdtemp(prefix="faceward-apicost-"))
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'fw.db'}",
                        master_key=base64.b64encode(os.urandom(32)).decode(), analysis_workers=1)
    app = create_app(settings, limits=Limits(1e9, 1_000_000, 1_000_000))
    services = app.state.services
    tenant_id, _ = services.accounts.create_tenant("Bench Org")
    _, token = services.accounts.create_key(tenant_id, Role.SEARCHER, "bench", None, actor="operator", source="bench")
    headers = {"Authorization": f"Bearer {token}"}

    async def run() -> dict[str, list[float]]:
        times: dict[str, list[float]] = {name: [] for name in uploads}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=600) as client:
            async def search(name: str) -> float:
                data, kind = uploads[name]
                started = time.perf_counter()
                answer = await client.post("/v1/search", headers=headers, data=FORM, files={"image": ("x", data, kind)})
                assert answer.status_code in (200, 413, 422), answer.text  # 413: refused from the header
                return time.perf_counter() - started
            for name in uploads:
                await search(name)  # warm
            for _ in range(args.rounds):
                for name in uploads:
                    times[name].append(await search(name))
        return times

    times = asyncio.run(run())
    services.gallery.remote.close()
    base = statistics.median(times["portrait_250"])
    report = {"rounds": args.rounds, "load_average": os.getloadavg(), "uploads": {
        name: {"bytes": len(uploads[name][0]), "median_s": round(statistics.median(t), 4),
               "ratio_to_portrait": round(statistics.median(t) / base, 2)} for name, t in times.items()}}
    print(json.dumps(report, indent=1))
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
