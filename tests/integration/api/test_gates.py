"""The gates in front of the API: authentication and the rate gate from the headers, then body intake.

A request without a valid key is answered before its body is read; a key past its rate likewise;
bodies are read within a budget and a read deadline before a request goes further in.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.datastructures import Headers

from faceward.api.middleware import AuthGateMiddleware, BodyIntakeMiddleware, IntakeBudget
from faceward.security.apikeys import new_token, parse_token
from faceward.security.errors import Unauthenticated
from faceward.security.permissions import Role
from faceward.security.policy import Principal
from faceward.security.ratelimit import TokenBucket

VALID = {new_token() for _ in range(2)}


def identify(headers: Headers, host: str | None) -> Principal:
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    token = parse_token(credentials) if scheme.lower() == "bearer" else None
    if token is None or str(token) not in {str(t) for t in VALID}:
        raise Unauthenticated(reason="test")
    return Principal("t_test", token.key_id, Role.ADMIN)


def gated_app(bucket: TokenBucket, reached: list[str], budget: IntakeBudget | None = None) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/work")
    async def work(request: Request) -> dict[str, int]:
        reached.append(request.headers.get("authorization", ""))
        return {"bytes": len(await request.body())}

    @app.post("/open")
    async def open_route(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    app.add_middleware(BodyIntakeMiddleware, limit_for=lambda path, method: 10_000, budget=budget)
    app.add_middleware(AuthGateMiddleware, identify=identify, bucket=bucket)
    return app


def test_unauthenticated_and_empty_buckets_are_refused_at_the_gate() -> None:
    bucket = TokenBucket(per_minute=6, burst=1)  # one token per 10 s
    spent, fresh = sorted(VALID, key=str)
    assert bucket.take(spent.key_id) == 0.0  # the use case took this key's only token
    reached: list[str] = []

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=gated_app(bucket, reached))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            refused = await client.post("/v1/work", content=b"x" * 1000, headers={"Authorization": f"Bearer {spent}"})
            assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(refused.headers["retry-after"]) <= 10 and refused.headers["connection"] == "close"
            for headers in ({"Authorization": "Bearer nonsense"}, {"Authorization": f"Bearer {new_token()}"},
                            {"Authorization": f"Basic {fresh}"}, {}):
                answered = await client.post("/v1/work", content=b"abc", headers=headers)
                assert answered.status_code == 401 and answered.headers["www-authenticate"].startswith("Bearer")
            assert reached == []  # refused before the route, i.e. before the body was read
            answered = await client.post("/v1/work", content=b"abc", headers={"Authorization": f"Bearer {fresh}"})
            assert answered.status_code == 200 and answered.json() == {"bytes": 3}
            assert (await client.post("/open", content=b"abcd")).json() == {"bytes": 4}  # not under /v1: no key needed

    asyncio.run(scenario())
    # Naming a key id at the gate spends none of its tokens.
    assert bucket.peek(fresh.key_id) == 0.0 and bucket.take(fresh.key_id) == 0.0


async def trickle(pieces: int, pause: float) -> AsyncIterator[bytes]:
    for _ in range(pieces):
        await asyncio.sleep(pause)
        yield b"x"


def test_a_body_slower_than_the_minimum_rate_is_cut_off_with_408() -> None:
    budget = IntakeBudget(min_rate=100.0, grace=0.3)
    reached: list[str] = []
    key = sorted(VALID, key=str)[0]

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=gated_app(TokenBucket(600, 100), reached, budget))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            slow = await client.post("/v1/work", content=trickle(50, 0.1), headers={"Authorization": f"Bearer {key}"})
            assert slow.status_code == 408 and slow.json()["error"]["code"] == "body_too_slow"
            assert slow.headers["connection"] == "close"
            fast = await client.post("/v1/work", content=b"y" * 5000, headers={"Authorization": f"Bearer {key}"})
            assert fast.status_code == 200 and fast.json() == {"bytes": 5000}
        assert len(reached) == 1

    asyncio.run(scenario())


@pytest.mark.parametrize("who", ["key", "unauthenticated"])
def test_bodies_being_read_have_a_budget_per_key_and_for_the_unauthenticated(who: str) -> None:
    budget = IntakeBudget(uploads=10, uploads_per_key=2, unauthenticated=2, min_rate=1.0, grace=30.0)
    one, other = sorted(VALID, key=str)
    path, headers = ("/v1/work", {"Authorization": f"Bearer {one}"}) if who == "key" else ("/open", {})

    async def scenario() -> None:
        gate = asyncio.Event()

        async def held() -> AsyncIterator[bytes]:
            yield b"a"
            await gate.wait()
            yield b"b"

        transport = httpx.ASGITransport(app=gated_app(TokenBucket(600, 100), [], budget))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            busy = [asyncio.create_task(client.post(path, content=held(), headers=headers)) for _ in range(2)]
            await asyncio.sleep(0.1)
            refused = await asyncio.wait_for(client.post(path, content=b"z", headers=headers), 2)
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            # Another key (and the same key without a body) is not held up by those reads.
            others = await client.post("/v1/work", content=b"zz", headers={"Authorization": f"Bearer {other}"})
            assert others.status_code == 200
            gate.set()
            assert [r.json() for r in await asyncio.gather(*busy)] == [{"bytes": 2}] * 2
            assert (await client.post(path, content=b"z", headers=headers)).status_code == 200

    asyncio.run(scenario())
