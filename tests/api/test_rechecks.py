"""A wall of dashboards on one token: their periodic re-checks share one check per window, and its outcome."""

from __future__ import annotations

import asyncio

import pytest

from service.api.credentials import Credential
from service.api.rechecks import SharedRechecks
from service.auth.access import AuthError
from service.auth.roles import Principal, Role

WALL = Credential(token="fs_wall")
PRINCIPAL = Principal(user_id="manager", role=Role.MANAGER, token_id="t1")


class TokenChecks:
    """The check each re-check would make (the real one reads the store): counted, answered when told to."""

    def __init__(self) -> None:
        self.checks: list[Credential] = []
        self.answer: asyncio.Event = asyncio.Event()
        self.revoked = False

    async def check(self, credential: Credential) -> Principal:
        self.checks.append(credential)
        await self.answer.wait()
        if self.revoked:
            raise AuthError("token revoked")
        return PRINCIPAL


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_thousand_connections_on_one_token_cost_one_check():
    checks, clock = TokenChecks(), Clock()
    rechecks = SharedRechecks(checks.check, share_seconds=1.0, clock=clock)
    waiting = [asyncio.create_task(rechecks.check(WALL)) for _ in range(1000)]
    await asyncio.sleep(0)
    checks.answer.set()
    assert await asyncio.gather(*waiting) == [PRINCIPAL] * 1000
    assert checks.checks == [WALL]

    clock.now += 0.5  # just finished: still shared
    assert await rechecks.check(WALL) == PRINCIPAL
    assert len(checks.checks) == 1


async def test_after_the_window_the_store_is_asked_again_and_a_revocation_reaches_every_sharer():
    checks, clock = TokenChecks(), Clock()
    checks.answer.set()
    rechecks = SharedRechecks(checks.check, share_seconds=1.0, clock=clock)
    await rechecks.check(WALL)
    checks.revoked = True
    clock.now += 1.5
    results = await asyncio.gather(*(rechecks.check(WALL) for _ in range(3)), return_exceptions=True)
    assert [str(r) for r in results] == ["token revoked"] * 3
    assert len(checks.checks) == 2


async def test_other_credentials_are_checked_on_their_own():
    checks, clock = TokenChecks(), Clock()
    checks.answer.set()
    rechecks = SharedRechecks(checks.check, share_seconds=1.0, clock=clock)
    other = Credential(session="cookie", csrf="c")
    await asyncio.gather(rechecks.check(WALL), rechecks.check(other))
    assert sorted(checks.checks, key=repr) == sorted([WALL, other], key=repr)


async def test_a_connection_that_gives_up_never_cancels_the_check_of_the_others():
    checks, clock = TokenChecks(), Clock()
    rechecks = SharedRechecks(checks.check, share_seconds=1.0, clock=clock)
    patient = asyncio.create_task(rechecks.check(WALL))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await rechecks.check(WALL)
    checks.answer.set()
    assert await patient == PRINCIPAL
    assert len(checks.checks) == 1
