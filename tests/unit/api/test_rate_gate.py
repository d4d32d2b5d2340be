"""A key past its rate is refused with 429 before its body is read or the key is checked."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI, Request

from faceward.api.middleware import RateGateMiddleware
from faceward.security.apikeys import new_token
from faceward.services.ratelimit import TokenBucket


def gated_app(bucket: TokenBucket, reached: list[str]) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/work")
    async def work(request: Request) -> dict[str, int]:
        reached.append(request.headers.get("authorization", ""))
        return {"bytes": len(await request.body())}

    app.add_middleware(RateGateMiddleware, bucket=bucket)
    return app


def test_an_empty_bucket_is_refused_at_the_gate_and_others_pass() -> None:
    bucket = TokenBucket(per_minute=6, burst=1)  # one token per 10 s
    spent, fresh = new_token(), new_token()
    assert bucket.take(spent.key_id) == 0.0  # the use case took this key's only token
    reached: list[str] = []

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=gated_app(bucket, reached))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            refused = await client.post("/v1/work", content=b"x" * 1000,
                                        headers={"Authorization": f"Bearer {spent}"})
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(refused.headers["retry-after"]) <= 10
            assert reached == []  # refused before the route, i.e. before the body or the key were looked at
            for headers in ({"Authorization": f"Bearer {fresh}"}, {"Authorization": "Bearer nonsense"},
                            {"Authorization": f"Basic {spent}"}, {}):
                answered = await client.post("/v1/work", content=b"abc", headers=headers)
                assert answered.status_code == 200 and answered.json() == {"bytes": 3}
            assert len(reached) == 4

    asyncio.run(scenario())
    # Naming a key id at the gate spends none of its tokens.
    assert bucket.peek(fresh.key_id) == 0.0 and bucket.take(fresh.key_id) == 0.0
