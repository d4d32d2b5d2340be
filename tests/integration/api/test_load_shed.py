"""Past capacity the API answers at once with 503 and Retry-After, never a long queue."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from faceward.api.middleware import LoadShedMiddleware


def slow_app(gate: asyncio.Event) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/slow")
    async def slow() -> dict[str, bool]:
        await gate.wait()
        return {"ok": True}

    @app.get("/healthz")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    app.add_middleware(LoadShedMiddleware, max_in_flight=2)
    return app


def test_sheds_past_max_in_flight() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        app = slow_app(gate)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            busy = [asyncio.create_task(client.get("/v1/slow")) for _ in range(2)]
            await asyncio.sleep(0.05)
            refused = await asyncio.wait_for(client.get("/v1/slow"), timeout=1)
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            assert refused.json()["error"]["code"] == "overloaded"
            assert (await client.get("/healthz")).status_code == 200  # never shed
            gate.set()
            assert [r.status_code for r in await asyncio.gather(*busy)] == [200, 200]
            assert (await client.get("/v1/slow")).status_code == 200  # capacity is back

    asyncio.run(scenario())
