"""Analytics on the real broker and database: live projections, rebuild, kill -9 and resume, as_of.

Events are published with a plain Kafka client on their topics (some twice), the
service runs as its own process, and every generation's rows are compared with
the pure recomputation from the raw events (tests/analytics_streams.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from analytics.generations import hold_for_reading, live_generation
from analytics.rebuild import as_of_generation
from analytics.rules import Weights
from analytics.settings import AnalyticsSettings
from tests.analytics_streams import build, publish_built, random_specs, recomputed, stored, wait_caught_up
from tests.events import cloud_event
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish, read_topic

pytestmark = pytest.mark.real


def _command(service: ServiceProcess, *args: str, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    env = {**os.environ, **service.env}
    return subprocess.Popen([sys.executable, "-m", "analytics", *args], env=env, stdout=out, stderr=out)


def _settings(service: ServiceProcess) -> AnalyticsSettings:
    env = service.env
    return AnalyticsSettings(
        kafka_bootstrap=env["ANALYTICS_KAFKA_BOOTSTRAP"],
        database_url=env["ANALYTICS_DATABASE_URL"],
        topic_prefix=env["ALUMNI_TOPIC_PREFIX"],
        erasure_pepper=env["ANALYTICS_ERASURE_PEPPER"],
    )


async def test_live_projections_then_a_rebuild_equal_the_recomputation(
    stack: Stack,
    topic_prefix: str,
    analytics_service: ServiceProcess,
    analytics_conn: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    built = build(random_specs(400, seed=13))
    await publish_built(stack.bootstrap, topic_prefix, built, twice=7)
    # Forward compatibility and bad input: a type of the future is counted and skipped,
    # an invalid consent fact goes to the dead-letter topic.
    future = cloud_event("no.usn.alumni.member-erased.v2", "x", {"member_id": "x"}, source="/usn-alumni/membership")
    await publish(stack.bootstrap, topic_prefix + "member-erased", [event_bytes(future)])
    broken = cloud_event("no.usn.alumni.consent-given.v1", "x", {"member_id": "x"}, source="/usn-alumni/consent")
    await publish(stack.bootstrap, topic_prefix + "consent-given", [event_bytes(broken)])

    analytics_service.start()
    await analytics_service.wait_ready()
    live = await wait_caught_up(analytics_conn, analytics_service)
    assert await stored(analytics_conn, live) == recomputed(built)
    dead = await read_topic(stack.bootstrap, topic_prefix + "consent-given.dlq", 1)
    assert [json.loads(r.value)["id"] for r in dead] == [broken["id"]]
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{analytics_service.url}/metrics")).text
    assert (
        f'alumni_messages_consumed_total{{outcome="unknown_type",topic="{topic_prefix}member-erased"}} 1.0' in metrics
    )

    rebuild = _command(analytics_service, "rebuild", "--no-progress", log=tmp_path / "rebuild.log")
    assert rebuild.wait(120) == 0, (tmp_path / "rebuild.log").read_text()[-3000:]
    rebuilt = await live_generation(analytics_conn)
    assert rebuilt != live
    assert await stored(analytics_conn, rebuilt) == recomputed(built)
    # The live consumers go on into the new generation.
    more = build(random_specs(60, seed=14))
    await publish_built(stack.bootstrap, topic_prefix, more)
    assert await wait_caught_up(analytics_conn, analytics_service) == rebuilt


async def test_a_rebuild_killed_midway_resumes_to_the_same_result(
    stack: Stack,
    topic_prefix: str,
    analytics_service: ServiceProcess,
    analytics_conn: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    built = build(random_specs(1500, seed=21))
    await publish_built(stack.bootstrap, topic_prefix, built, twice=5)
    analytics_service.env["ANALYTICS_REBUILD_BATCH_RECORDS"] = "50"
    log = tmp_path / "rebuild.log"
    first = _command(analytics_service, "rebuild", "--no-progress", log=log)
    deadline = time.monotonic() + 60
    while True:  # kill -9 once some batches are committed, well before the end
        name = None
        if await analytics_conn.fetchval("SELECT to_regclass('public.generations') IS NOT NULL"):
            name = await analytics_conn.fetchval("SELECT name FROM generations WHERE state = 'building'")
        if name is not None:
            applied = await analytics_conn.fetchval(f"SELECT coalesce(sum(next_offset), 0) FROM {name}.positions")
            if applied >= 200:
                break
        await asyncio.sleep(0.05)
        assert first.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
    first.kill()
    first.wait()
    assert await analytics_conn.fetchval("SELECT state FROM generations WHERE name = $1", name) == "building"

    second = _command(analytics_service, "rebuild", "--no-progress", log=log)
    assert second.wait(180) == 0, log.read_text()[-3000:]
    assert await live_generation(analytics_conn) == name  # the same generation, resumed
    assert await stored(analytics_conn, name) == recomputed(built)


async def test_as_of_a_midpoint_equals_the_events_up_to_it(
    stack: Stack, topic_prefix: str, analytics_service: ServiceProcess, analytics_conn: asyncpg.Connection
) -> None:
    built = build(random_specs(300, seed=5))
    first, second = built[:150], built[150:]
    await publish_built(stack.bootstrap, topic_prefix, first, twice=4)
    moment = datetime.now(UTC) + timedelta(milliseconds=5)
    while datetime.now(UTC) < moment + timedelta(milliseconds=5):  # the broker's timestamps are the producer's clock
        time.sleep(0.001)
    await publish_built(stack.bootstrap, topic_prefix, second)
    analytics_service.start()
    await analytics_service.wait_ready()
    live = await wait_caught_up(analytics_conn, analytics_service)

    name = await as_of_generation(_settings(analytics_service), Weights(), moment)
    assert await stored(analytics_conn, name) == recomputed(first)
    assert await live_generation(analytics_conn) == live  # live untouched, and still complete
    assert await stored(analytics_conn, live) == recomputed(built)
    assert await as_of_generation(_settings(analytics_service), Weights(), moment) == name  # built once
    # A moment between the same two events reuses the generation: no second build.
    assert await as_of_generation(_settings(analytics_service), Weights(), moment - timedelta(milliseconds=1)) == name
    # Under other weights the same moment is built anew (engagement rows carry the weights), then reused.
    heavier = Weights(opened=3.0, clicked=7.0)
    reweighed = await as_of_generation(_settings(analytics_service), heavier, moment)
    assert reweighed != name
    assert await stored(analytics_conn, reweighed) == recomputed(first, heavier)
    assert await as_of_generation(_settings(analytics_service), heavier, moment) == reweighed
    assert await as_of_generation(_settings(analytics_service), Weights(), moment) == name

    # Disk stays bounded: with one kept, building another moment (after every event) drops the others,
    # but not under a reader: the drop waits until the reader on the oldest one is done.
    reader = await asyncpg.connect(analytics_service.env["ANALYTICS_DATABASE_URL"])
    try:
        reading = reader.transaction(isolation="repeatable_read", readonly=True)
        await reading.start()
        assert await hold_for_reading(reader, name)
        kept_one = _settings(analytics_service).model_copy(update={"as_of_keep": 1})
        building = asyncio.create_task(as_of_generation(kept_one, Weights(), datetime.now(UTC)))

        async def built_beside() -> bool:
            found = await analytics_conn.fetchval(
                "SELECT count(*) FROM generations WHERE state = 'as_of' AND name <> all($1::text[])", [name, reweighed]
            )
            return bool(found)

        await eventually(built_beside, timeout=60, what="the new moment built")
        await asyncio.sleep(1)
        assert not building.done()  # built, and waiting to drop what she reads
        assert await stored(reader, name) == recomputed(first)  # her answer is whole
        await reading.commit()
        other = await asyncio.wait_for(building, 60)
        assert not await hold_for_reading(reader, name)  # dropped: a reader now would choose again
    finally:
        await reader.close()
    assert other != name
    assert await stored(analytics_conn, other) == recomputed(built)
    as_of = await analytics_conn.fetch("SELECT name FROM generations WHERE state = 'as_of'")
    assert [r["name"] for r in as_of] == [other]
    assert await analytics_conn.fetchval("SELECT to_regnamespace($1)", name) is None
