"""alumni_kit.periodic: a round now, then one every interval; a failing round neither ends the
job nor goes uncounted; leaving the part stops the task."""

from __future__ import annotations

import asyncio

from alumni_kit.periodic import periodic


async def test_a_failing_round_is_counted_and_the_next_round_runs() -> None:
    rounds: list[int] = []
    failures: list[int] = []

    async def one_round() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 2:
            raise ConnectionError("the database is away")

    part = periodic("test job", 0.01, one_round, on_failure=lambda: failures.append(1))
    async with part():
        for _ in range(500):
            if len(rounds) >= 4:
                break
            await asyncio.sleep(0.01)
    assert len(rounds) >= 4  # the failure of round 2 did not end the job
    assert failures == [1]
    stopped_at = len(rounds)
    await asyncio.sleep(0.05)
    assert len(rounds) == stopped_at  # left the part: no round after


async def test_the_first_round_runs_at_once() -> None:
    started = asyncio.Event()

    async def one_round() -> None:
        started.set()

    async with periodic("test job", 3600, one_round)():
        await asyncio.wait_for(started.wait(), timeout=5)
