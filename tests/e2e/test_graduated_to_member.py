"""`graduated` → member, on the real broker and database, published with a plain Kafka client."""

from __future__ import annotations

import random

import asyncpg
import pytest

from tests.e2e.expect import expected_members, expected_programmes, member_count, stored_programmes
from tests.e2e.graduations import graduation
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, opened_values, publish, read_topic
from usn_schemas.member import MemberRegisteredV1
from usn_tools.fs_demo import graduation_events

pytestmark = pytest.mark.real


async def test_a_thousand_events_with_duplicates_and_shuffling_give_exactly_the_expected_members(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    events = list(graduation_events(1000, seed=7))
    rng = random.Random(7)
    stream = events + rng.sample(events, 150)  # redeliveries: same id, same content
    rng.shuffle(stream)
    assert any(len([e for e in events if e["subject"] == s]) > 1 for s in {e["subject"] for e in events})

    membership_service.start()
    await membership_service.wait_ready()
    await publish(stack.bootstrap, topic_prefix + "graduated", [event_bytes(e) for e in stream])

    want = expected_programmes(events)
    await eventually(lambda: _programmes_equal(membership_conn, want), what="expected programmes")
    assert await member_count(membership_conn) == len(expected_members(events))

    registered = await read_topic(stack.bootstrap, topic_prefix + "member-registered", len(expected_members(events)))
    # Personal data travels sealed with each member's key; membership's key API opens it.
    assert not any(b'"student_number":"1' in r.value for r in registered)
    facts = [MemberRegisteredV1.model_validate(v) for v in await opened_values(registered, membership_service)]
    assert sorted(f.data.student_number for f in facts) == sorted(expected_members(events))
    assert all(r.key.decode() == f.subject == f.data.member_id for r, f in zip(registered, facts, strict=True))


async def _programmes_equal(conn: asyncpg.Connection, want: set[tuple[str, str, str]]) -> bool:
    return await stored_programmes(conn) == want


async def test_a_second_degree_updates_the_member_and_publishes_member_updated(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    bachelor = graduation("ev-1", "555001", "BSL", "bachelor", "2021-06-18")
    master = graduation("ev-2", "555001", "MNAUT", "master", "2023-06-16")
    membership_service.start()
    await membership_service.wait_ready()
    await publish(stack.bootstrap, topic_prefix + "graduated", [event_bytes(bachelor), event_bytes(master)])

    await eventually(lambda: _count_programmes(membership_conn), what="two programmes")
    assert await member_count(membership_conn) == 1
    updated = await read_topic(stack.bootstrap, topic_prefix + "member-updated", 1)
    [doc] = await opened_values(updated, membership_service)
    assert doc is not None
    assert doc["type"] == "no.usn.alumni.member-updated.v1"
    assert doc["data"]["changed"] == ["programmes"]
    assert {p["programme_code"] for p in doc["data"]["programmes"]} == {"BSL", "MNAUT"}


async def _count_programmes(conn: asyncpg.Connection) -> bool:
    return int(await conn.fetchval("SELECT count(*) FROM programmes")) == 2


async def test_trace_context_and_keys_follow_the_graduate_to_member_registered(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    event = event_bytes(graduation("ev-trace", "555002", "BSL", "bachelor", "2024-06-14"))
    traceparent = [("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01".encode())]
    await publish(stack.bootstrap, topic_prefix + "graduated", [event], headers=traceparent)

    membership_service.start()
    await membership_service.wait_ready()
    [record] = await read_topic(stack.bootstrap, topic_prefix + "member-registered", 1)
    got = dict(record.headers)
    assert got["traceparent"].decode().split("-")[1] == trace_id
    assert got["content-type"] == b"application/cloudevents+json"


async def test_with_tracing_on_the_service_adds_its_own_span_to_the_producers_trace(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess
) -> None:
    trace_id, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    event = event_bytes(graduation("ev-otel", "555003", "BSL", "bachelor", "2024-06-14"))
    traceparent = [("traceparent", f"00-{trace_id}-{parent}-01".encode())]
    await publish(stack.bootstrap, topic_prefix + "graduated", [event], headers=traceparent)

    membership_service.env["MEMBERSHIP_OTEL_EXPORTER"] = "console"
    membership_service.start()
    await membership_service.wait_ready()
    [record] = await read_topic(stack.bootstrap, topic_prefix + "member-registered", 1)
    _, out_trace, out_span, _ = dict(record.headers)["traceparent"].decode().split("-")
    assert out_trace == trace_id
    assert out_span != parent, "the service's own span is the parent of what it published"
    membership_service.stop()  # flushes the span processor
    log = membership_service.tail(400)
    assert '"name": "membership apply graduated"' in log
    assert out_span in log
    assert "Åse" not in log, "no personal data in spans or logs"
