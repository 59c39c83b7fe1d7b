"""Inputs that once stopped a service for good, replayed on the real broker and database.

- A graduation whose name looks like a sealed token is data: it makes a member,
  and the graduations behind it flow (membership used to rewind that batch forever).
- An idle partition's committed offset catches up with what was applied (lag 0)
  although no further message arrives.
- An erasure right after her graduation, on a partition that then stays quiet,
  leaves nothing of hers on `graduated` (the commit used to lag what was applied).
"""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.e2e.consent_helpers import staff_headers, started
from tests.e2e.graduations import graduation
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, group_lag, publish, records_now

pytestmark = pytest.mark.real

LOOK_ALIKE = "pd1.x.1.AAAA"


def _graduated_group(service: ServiceProcess) -> str:
    return service.env["MEMBERSHIP_GROUP_ID"] + ".graduated"


async def test_a_name_that_looks_like_a_sealed_token_is_data_and_the_stream_flows_on(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    # Within a commit interval only the first batch commits at once; the rest is left to the flush.
    membership_service.env["MEMBERSHIP_COMMIT_INTERVAL_MS"] = "1000"
    await started(membership_service)
    odd = graduation("odd-1", "5550000", given_name=LOOK_ALIKE)
    odd["data"]["family_name"] = "pd1.6f1c2a4e-0000-4000-8000-000000000001.1." + "A" * 40
    ordinary = [graduation(f"ord-{i}", f"55501{i:02d}") for i in range(60)]
    topic = topic_prefix + "graduated"
    await publish(stack.bootstrap, topic, [event_bytes(odd)] + [event_bytes(e) for e in ordinary])

    await eventually(lambda: _members(membership_conn, 61), timeout=45, what="61 members")
    names = await membership_conn.fetchrow(
        "SELECT given_name, family_name FROM members WHERE student_number = '5550000'"
    )
    assert names["given_name"] == LOOK_ALIKE
    assert names["family_name"] == odd["data"]["family_name"]
    # Nothing was dead-lettered, and every partition's commit caught up although nothing followed.
    await eventually(lambda: _lag_is_zero(stack, _graduated_group(membership_service), topic), 5, "lag 0")
    assert await records_now(stack.bootstrap, topic + ".dlq") == []


async def test_an_erasure_on_a_quiet_partition_leaves_nothing_of_her_on_graduated(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    # Offsets are committed once a minute here: only what membership recorded as applied
    # (with the effects) can tell the erasure how far her partition was consumed.
    membership_service.env["MEMBERSHIP_COMMIT_INTERVAL_MS"] = "60000"
    await started(membership_service)
    topic = topic_prefix + "graduated"
    others = [graduation(f"other-{i}", f"66601{i:02d}") for i in range(40)]
    await publish(stack.bootstrap, topic, [event_bytes(e) for e in others])
    await eventually(lambda: _members(membership_conn, 40), what="40 members")
    hers = graduation("hers-1", "6669999", email="gudrun.quiet@example.no", phone="+4791234567")
    hers["data"].update(given_name="Gudrun", family_name="Stillevann")
    await publish(stack.bootstrap, topic, [event_bytes(hers)])
    member_id = await eventually(lambda: _member_id(membership_conn, "6669999"), what="her membership")

    # Erased at once: nothing has arrived since hers, so no later batch has committed her offset.
    erased = httpx.post(
        f"{membership_service.url}/members/{member_id}/erasure",
        json={"reason": "Written request, case 2026/777"},
        headers=staff_headers("comms"),
    )
    assert erased.status_code == 202, erased.text

    replay = await records_now(stack.bootstrap, topic)
    assert replay, "the other graduations are still on the topic"
    for record in replay:
        for secret in (b"Gudrun", b"Stillevann", b"gudrun.quiet@example.no", b"+4791234567", b'"6669999"'):
            assert secret not in (record.value or b""), f"her data at offset {record.offset}"


async def _members(conn: asyncpg.Connection, n: int) -> bool:
    return bool(await conn.fetchval("SELECT count(*) FROM members") == n)


async def _member_id(conn: asyncpg.Connection, student_number: str) -> str | None:
    found = await conn.fetchval("SELECT member_id FROM members WHERE student_number = $1", student_number)
    return str(found) if found else None


async def _lag_is_zero(stack: Stack, group: str, topic: str) -> bool:
    return await group_lag(stack.bootstrap, group, topic) == 0


async def test_a_graduation_as_large_as_the_topic_takes_is_dead_lettered_whole_and_the_rest_flows(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    """The dead letter of a message the topic just accepted (4 MiB) carries reason headers
    on top: the producer and the dead-letter topic must take that, or the partition stops."""
    await started(membership_service)
    big = graduation("big-1", "5559000", padding="")
    # As large as a plain producer and the topic take (4 MiB, less the record's own overhead).
    big["data"]["padding"] = "x" * (4 * 1024 * 1024 - 256 - len(event_bytes(big)[1]))
    topic = topic_prefix + "graduated"
    ordinary = [graduation(f"after-big-{i}", f"55591{i:02d}") for i in range(5)]
    await publish(stack.bootstrap, topic, [event_bytes(big)] + [event_bytes(e) for e in ordinary])

    await eventually(lambda: _members(membership_conn, 5), what="the five ordinary graduates")
    [dead] = await eventually(lambda: records_now(stack.bootstrap, topic + ".dlq"), what="the dead letter")
    assert dict(dead.headers)["dlq.error.kind"] == b"too-large"
    assert dead.value == event_bytes(big)[1]  # whole: it can be inspected and re-driven
