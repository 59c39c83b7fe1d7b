"""Bad input goes to `graduated.dlq` with its reason; the good events around it are processed."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx
import pytest

from alumni_kit.dlq import H_ERROR_KIND, H_GROUP, H_OFFSET, H_PARTITION, H_REASON, H_TOPIC
from tests.e2e.expect import member_count
from tests.e2e.graduations import graduation
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish, read_topic
from usn_tools.alumni.dlq import read_dead_letters

pytestmark = pytest.mark.real


def _without(event: dict[str, Any], field: str) -> dict[str, Any]:
    data = {k: v for k, v in event["data"].items() if k != field}
    return {**event, "data": data}


def _bad_messages() -> list[tuple[str, bytes | None, str]]:
    """(what, value, the reason kind and words its DLQ reason must carry)."""
    good = graduation("bad-base", "700000")
    huge = {**good, "id": "huge", "data": {**good["data"], "padding": "x" * (2 * 1024 * 1024)}}
    cases: list[tuple[str, dict[str, Any] | bytes | None, str]] = [
        ("not json", b"\xff\xfe this is not JSON", "not-json"),
        ("not a cloudevent", b'{"hello": "world"}', "not-cloudevent"),
        ("no student number", _without({**good, "id": "b1"}, "student_number"), "invalid data.student_number"),
        ("unknown faculty", {**good, "id": "b2", "data": {**good["data"], "faculty": "XYZ"}}, "invalid data.faculty"),
        (
            "unknown degree level",
            {**good, "id": "b3", "data": {**good["data"], "degree_level": "diploma"}},
            "invalid data.degree_level",
        ),
        (
            "date not YYYY-MM-DD",
            {**good, "id": "b4", "data": {**good["data"], "graduation_date": "15.06.2024"}},
            "invalid data.graduation_date",
        ),
        ("unknown major version", {**good, "id": "b5", "type": "no.usn.fs.graduated.v2"}, "unknown-type v2"),
        ("2 MB value", huge, "too-large 2097"),
        ("no value at all", None, "empty"),
    ]
    out = []
    for what, value, expect in cases:
        raw = value if value is None or isinstance(value, bytes) else json.dumps(value).encode()
        out.append((what, raw, expect))
    return out


async def test_each_bad_message_is_dead_lettered_with_its_reason_and_good_ones_flow_around_it(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    bad = _bad_messages()
    stream: list[tuple[bytes | None, bytes | None]] = []
    for i, (_, value, _) in enumerate(bad):
        stream.append(event_bytes(graduation(f"good-{i}", f"71000{i}")))
        stream.append((b"700000", value))  # all on one key: one partition, so nothing can overtake a bad one
    stream.append(event_bytes(graduation("good-last", "719999")))

    membership_service.start()
    await membership_service.wait_ready()
    await publish(stack.bootstrap, topic_prefix + "graduated", stream)

    dead = await read_topic(stack.bootstrap, topic_prefix + "graduated.dlq", len(bad))
    assert len(dead) == len(bad)
    by_value = {r.value: dict(r.headers) for r in dead}
    for what, value, expect in bad:
        headers = by_value[value]
        kind, *words = expect.split()
        assert headers[H_ERROR_KIND].decode() == kind, what
        for word in words:
            assert word in headers[H_REASON].decode(), (what, headers[H_REASON])
        assert headers[H_TOPIC].decode() == topic_prefix + "graduated"
        assert int(headers[H_PARTITION]) >= 0
        assert int(headers[H_OFFSET]) >= 0
        assert headers[H_GROUP].decode() == membership_service.env["MEMBERSHIP_GROUP_ID"] + ".graduated"
    assert {r.key for r in dead} == {b"700000"}, "the original key is kept"

    await eventually(lambda: _members_are(membership_conn, len(bad) + 1), what="all good events processed")
    metrics = httpx.get(f"{membership_service.url}/metrics").text
    assert f'alumni_messages_dead_lettered_total{{kind="too-large",topic="{topic_prefix}graduated"}} 1.0' in metrics


async def _members_are(conn: asyncpg.Connection, n: int) -> bool:
    return await member_count(conn) == n


async def test_an_invalid_optional_field_still_makes_a_member_and_the_defect_is_visible(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    event = graduation("opt-1", "720001", email="not-an-address", phone="12345", credits="lots", campus="Vestfold")
    membership_service.start()
    await membership_service.wait_ready()
    await publish(stack.bootstrap, topic_prefix + "graduated", [event_bytes(event)])
    await eventually(lambda: _members_are(membership_conn, 1), what="the member")

    row = await membership_conn.fetchrow("SELECT member_id::text, email, phone FROM members")
    assert row is not None
    assert (row["email"], row["phone"]) == (None, None)
    from tests.e2e.test_staff_api import staff_headers

    member = httpx.get(f"{membership_service.url}/members/{row['member_id']}", headers=staff_headers("comms")).json()
    assert {d["field"] for d in member["field_defects"]} == {"email", "phone", "credits"}
    assert all(d["event_id"] == "opt-1" for d in member["field_defects"])
    assert member["programmes"][0]["campus"] == "Vestfold"
    assert member["programmes"][0]["credits"] is None
    metrics = httpx.get(f"{membership_service.url}/metrics").text
    assert 'membership_field_defects_total{field="email"} 1.0' in metrics
    assert await read_dead_letters(stack.bootstrap, topic_prefix + "graduated.dlq") == []


async def test_dead_letters_can_be_listed_and_redriven_to_the_original_topic(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess
) -> None:
    from usn_tools.alumni.dlq import redrive

    key, value = event_bytes(graduation("redrive-1", "730001", faculty="XYZ"))
    await publish(stack.bootstrap, topic_prefix + "graduated", [(key, value)], headers=[("origin", b"fs-7")])
    membership_service.start()
    await membership_service.wait_ready()
    await read_topic(stack.bootstrap, topic_prefix + "graduated.dlq", 1)

    [letter] = await read_dead_letters(stack.bootstrap, topic_prefix + "graduated.dlq")
    assert letter.header(H_ERROR_KIND) == "invalid"
    assert await redrive(stack.bootstrap, [letter]) == 1

    records = await read_topic(stack.bootstrap, topic_prefix + "graduated", 2)
    assert [(r.key, r.value) for r in records] == [(key, value), (key, value)]
    assert dict(records[1].headers) == {"origin": b"fs-7"}, "original headers back, dlq.* headers gone"
    again = await read_topic(stack.bootstrap, topic_prefix + "graduated.dlq", 2)
    assert len(again) == 2, "still invalid, so dead-lettered again rather than lost or looping"


async def test_a_header_that_is_not_utf8_loses_nothing_of_its_batch(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    """Found by the topic fuzzer: FastStream decoded every header as UTF-8 before our consumer
    saw the batch, and one that was not made it drop the whole batch unseen (no effect, no dead
    letter) while the next batch's commit went past it. All on one key: one partition, one batch."""
    from aiokafka import AIOKafkaProducer

    events = [graduation(f"hdr-{i}", "740000", code=f"P{i}") for i in range(3)]
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    await producer.start()
    try:
        for i, event in enumerate(events):
            key, value = event_bytes(event)
            headers = [("origin", b"\xff\xfe not UTF-8"), ("empty", None)] if i == 1 else [("origin", b"fs")]
            await producer.send_and_wait(topic_prefix + "graduated", value, key=key, headers=headers)
    finally:
        await producer.stop()
    membership_service.start()
    await membership_service.wait_ready()

    async def all_programmes() -> bool:
        codes = await membership_conn.fetch("SELECT programme_code FROM programmes ORDER BY 1")
        return [r[0] for r in codes] == ["P0", "P1", "P2"]

    await eventually(all_programmes, what="all three graduations applied")
    assert await read_dead_letters(stack.bootstrap, topic_prefix + "graduated.dlq") == []
