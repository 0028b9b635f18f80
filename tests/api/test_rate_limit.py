"""Request budgets: a flood from one device is turned away with 429 while everyone else is served."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from service.api.rate_limit import RateLimiter, retry_after
from service.settings import Settings
from tests.api.conftest import Api

PER_MINUTE, BURST = 60, 5
ME = "query{me{id}}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_a_burst_then_one_request_per_refill_interval():
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("a") == pytest.approx(1.0)
    assert limiter.take("b") == 0  # keys do not share a budget
    clock.now += 0.5
    assert limiter.take("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("a") == 0
    clock.now += 3600
    assert [limiter.take("a") for _ in range(4)][-1] > 0  # refills up to the burst, not beyond
    assert (retry_after(0.01), retry_after(1.0), retry_after(1.2)) == (1, 1, 2)


def test_a_zero_rate_disables_the_limit_and_keys_are_bounded():
    assert RateLimiter(per_minute=0, burst=1).take("a") == 0
    assert RateLimiter(per_minute=0, burst=1).take("a") == 0
    limiter = RateLimiter(per_minute=60, burst=1, max_keys=100)
    for n in range(1000):
        limiter.take(f"token:{n}")
    assert len(limiter) == 100


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, rate_limit_per_minute=PER_MINUTE, rate_limit_burst=BURST)


async def test_a_flooding_device_gets_429_with_retry_after_while_another_device_is_served(api: Api):
    _, ali = await api.user("Ali", "REP")
    _, siti = await api.user("Siti", "REP")
    flooder = await api.device(ali, "dev1")
    other = await api.device(siti, "dev2")

    async def post(token: str):
        return await api.http.post("/graphql", json={"query": ME}, headers={"Authorization": f"Bearer {token}"})

    async def served_meanwhile() -> float:
        await asyncio.sleep(0)
        started = time.monotonic()
        response = await post(other)
        assert response.status_code == 200 and response.json()["data"]["me"]["id"]
        return time.monotonic() - started

    *flood, latency = await asyncio.gather(*[post(flooder) for _ in range(30)], served_meanwhile())
    statuses = [response.status_code for response in flood]
    assert statuses.count(200) <= BURST + 1 and statuses.count(429) >= 30 - BURST - 1
    limited = next(response for response in flood if response.status_code == 429)
    assert limited.headers["Retry-After"] == "1"
    [error] = limited.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED" and "retry in 1 s" in error["message"]
    assert latency < 1.0, f"the other device waited {latency:.2f} s"

    # The budget follows the device, not just the token: a fresh token for dev1 is still limited.
    fresh = await api.device(ali, "dev1")
    assert (await post(fresh)).status_code == 429
    assert (await post(ali)).status_code == 200  # the rep's own user token has its own budget


async def test_unauthenticated_floods_spend_the_client_addresss_budget(api: Api):
    no_token = [await api.http.post("/graphql", json={"query": ME}) for _ in range(BURST + 2)]
    assert [r.status_code for r in no_token][-1] == 429
    assert no_token[-1].json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    # Bad tokens each have a budget of their own, but failing ones also spend the address's.
    bad = [await api.call(ME, token=f"fs_bad{n}") for n in range(3)]
    assert all(body["errors"][0]["extensions"]["code"] == "RATE_LIMITED" for body in bad)
    assert (await api.data(ME))["me"]["id"]  # a valid token from the same address is still served


async def test_websocket_connections_and_subscribes_spend_the_same_budget(settings: Settings):
    from tests.api.test_authorization_matrix import AsgiWebSocket, Closed, serve_in_process

    async with serve_in_process(settings) as served:
        _, rep = await served.api.user("Ali", "REP")
        device = await served.api.device(rep, "dev1")  # the device token's budget is untouched so far
        socket = await AsgiWebSocket.open(served.app, {"authorization": f"Bearer {device}"})  # 1 of 5
        try:
            assert (await socket.receive())["type"] == "connection_ack"
            for n in range(BURST):  # 4 more fit in the burst, the 5th does not
                await socket.send(
                    {"id": str(n), "type": "subscribe", "payload": {"query": "subscription{refusalEvents{type}}"}}
                )
            answer = await socket.receive()
            assert (answer["id"], answer["type"]) == (str(BURST - 1), "error")
            assert answer["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
        finally:
            await socket.close()
        again = await AsgiWebSocket.open(served.app, {"authorization": f"Bearer {device}"})
        try:
            with pytest.raises(Closed) as closed:
                await again.receive()
            assert closed.value.code == 4429 and "retry in" in closed.value.reason
        finally:
            await again.close()


async def test_the_history_export_spends_the_same_budget(api: Api):
    _, integrator = await api.user("Ian", "INTEGRATOR")
    headers = {"Authorization": f"Bearer {integrator}"}
    answers = [(await api.http.get("/export/history.ndjson", headers=headers)).status_code for _ in range(BURST + 2)]
    assert answers[0] == 200 and answers[-1] == 429
    turned_away = await api.http.get("/export/history.ndjson", headers=headers)
    assert int(turned_away.headers["Retry-After"]) >= 1
