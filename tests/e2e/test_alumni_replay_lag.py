"""`alumni replay` and `alumni lag` against the real broker, called as the console script.

A replay by time returns exactly the messages whose broker timestamps fall in
[since, until), published in bursts around both ends, checks each against its
contract (both CloudEvents modes) and moves no consumer group's offsets; `alumni lag`
shows the lag a stopped consumer really has.
"""

from __future__ import annotations

import json
import time
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from tests.e2e.alumni_helpers import alumni_at_once, every_committed_offset, json_lines
from tests.e2e.consent_helpers import started
from tests.e2e.graduations import graduation
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, group_lag, records_now

pytestmark = pytest.mark.real


async def _burst(stack: Stack, topic: str, events: list[dict[str, Any]], binary: int | None = None) -> None:
    """Publish `events` (the one at index `binary` in binary content mode) and wait for the acks."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    await producer.start()
    try:
        for i, event in enumerate(events):
            key, value = event_bytes(event)
            headers: list[tuple[str, bytes]] = []
            if i == binary:
                doc = json.loads(value)
                headers = [(f"ce_{k}", str(v).encode()) for k, v in doc.items() if k not in ("data", "datacontenttype")]
                headers.append(("content-type", b"application/json"))
                value = json.dumps(doc["data"]).encode()
            await producer.send(topic, value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


def _after(ms: int) -> int:
    """The first millisecond of this machine's clock after `ms` (producers stamp records with it)."""
    while (now := int(time.time() * 1000)) <= ms:
        time.sleep(0.001)
    return now


async def test_replay_by_time_is_exact_checks_contracts_and_moves_no_offsets_and_lag_is_known(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    topic = topic_prefix + "graduated"
    group = membership_service.env["MEMBERSHIP_GROUP_ID"] + ".graduated"
    await started(membership_service)

    before = [graduation(f"a-{i}", f"81000{i:02d}") for i in range(8)]
    await _burst(stack, topic, before)
    t1 = _after(max(r.timestamp for r in await records_now(stack.bootstrap, topic)))
    inside = [graduation(f"b-{i}", f"82000{i:02d}") for i in range(8)]
    inside.append(graduation("b-bad", "8200099", faculty="XYZ"))  # fails its contract
    await _burst(stack, topic, inside, binary=3)
    t2 = _after(max(r.timestamp for r in await records_now(stack.bootstrap, topic)))
    after = [graduation(f"c-{i}", f"83000{i:02d}") for i in range(8)]
    await _burst(stack, topic, after)

    # Membership applies all but the invalid one and commits; then it stops, and 5 more wait.
    await eventually(lambda: _members(membership_conn, 24), what="24 members")
    await eventually(lambda: _no_lag(stack, group, topic), what="membership's commits")
    membership_service.stop()
    await _burst(stack, topic, [graduation(f"d-{i}", f"84000{i:02d}") for i in range(5)])
    offsets_before = await every_committed_offset(stack.bootstrap)

    iso = [time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t / 1000)) + f".{t % 1000:03d}Z" for t in (t1, t2)]
    service = membership_service.env["MEMBERSHIP_GROUP_ID"]
    window = ["replay", "graduated", "--since", iso[0], "--until", iso[1]]
    run, by_key, again, missing, lag, over, table, no_group = await alumni_at_once(
        stack,
        topic_prefix,
        (window, None),
        (["replay", "graduated", "--key", "8200002", "--to", "/dev/stdout"], None),
        ([*window, "--type", "graduated"], None),
        (["replay", "no-such-topic"], None),
        (["lag", service, "--json"], None),
        (["lag", group, "--max-lag", "0"], None),
        (["lag", group], None),
        (["lag", "no-such-group"], None),
    )
    assert run.returncode == 1, run.stderr  # 1: done, one message fails its contract
    lines = json_lines(run.stdout)
    published = {r.value: (r.partition, r.offset, r.timestamp) for r in await records_now(stack.bootstrap, topic)}
    assert len(published) == 8 + 9 + 8 + 5
    wanted = sorted((p, o) for p, o, ts in published.values() if t1 <= ts < t2)
    assert sorted((line["partition"], line["offset"]) for line in lines) == wanted
    assert sorted(line["event"]["id"] for line in lines) == sorted(e["id"] for e in inside)
    assert [line["timestamp"] for line in lines] == sorted(line["timestamp"] for line in lines)
    assert all(line["topic"] == topic and line["key"] == line["event"]["subject"] for line in lines)
    verdicts = {line["event"]["id"]: (line["valid"], line["mode"], line.get("error", {}).get("kind")) for line in lines}
    assert verdicts["b-bad"] == (False, "structured", "invalid")
    assert verdicts["b-3"] == (True, "binary", None)
    assert sum(valid for valid, _, _ in verdicts.values()) == 8
    assert "faculty" in next(line["error"]["reason"] for line in lines if not line["valid"])
    assert run.stdout.splitlines()[0] == json.dumps(lines[0], sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    # Filters, a file, and the same answer twice (stable enough to diff).
    assert [line["event"]["id"] for line in json_lines(by_key.stdout)] == ["b-2"]
    assert by_key.returncode == 0
    assert again.stdout == run.stdout
    assert missing.returncode == 3

    # No group moved, and none was made.
    assert await every_committed_offset(stack.bootstrap) == offsets_before

    # The lag of the stopped consumer: the 5 it has not seen, per partition end − committed.
    assert lag.returncode == 0, lag.stderr
    rows = [r for r in json_lines(lag.stdout) if r["group"] == group]
    ends = {p.partition: e for p, e in (await _ends(stack, topic)).items()}
    assert {r["partition"]: r["end"] for r in rows} == ends
    assert all(r["lag"] == r["end"] - r["committed"] for r in rows)
    assert sum(r["lag"] for r in rows) == 5
    assert over.returncode == 1
    lines_of_table = table.stdout.splitlines()
    assert lines_of_table[0].split() == ["GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG"]
    assert len(lines_of_table) == 1 + 6
    assert no_group.returncode == 3


async def _members(conn: asyncpg.Connection, n: int) -> bool:
    return bool(await conn.fetchval("SELECT count(*) FROM members") == n)


async def _no_lag(stack: Stack, group: str, topic: str) -> bool:
    return await group_lag(stack.bootstrap, group, topic) == 0


async def _ends(stack: Stack, topic: str) -> dict[Any, int]:
    from aiokafka import AIOKafkaConsumer

    from tests.stack import partitions_of

    partitions = await partitions_of(stack.bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()
