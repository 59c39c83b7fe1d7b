"""`alumni_consumer_lag_messages` on the real broker: records a consumer has not applied
show as lag on their partition, what it applied (or its group committed) does not, and a
partition this replica no longer holds leaves no series behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from alumni_kit.runtime import ServiceRuntime
from alumni_kit.settings import ServiceSettings
from tests.e2e.graduations import graduation
from tests.stack import Stack, event_bytes, publish

pytestmark = pytest.mark.real


def _lags(runtime: ServiceRuntime, topic: str) -> dict[str, float]:
    return {
        s.labels["partition"]: s.value
        for family in runtime.metrics.registry.collect()
        for s in family.samples
        if s.name == "alumni_consumer_lag_messages" and s.labels["topic"] == topic
    }


async def test_lag_is_what_the_consumer_has_not_applied_per_partition(stack: Stack, topic_prefix: str) -> None:
    topic = topic_prefix + "campaigns"  # 3 partitions
    events = [graduation(f"lag-{i}", f"90000{i}") for i in range(9)]
    await publish(stack.bootstrap, topic, [event_bytes(e) for e in events])
    runtime = ServiceRuntime("lagtest", ServiceSettings(kafka_bootstrap=stack.bootstrap), Path("."))
    group = f"{topic_prefix}lag"
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        assert sum(ends.values()) == 9

        await runtime._measure_lag(topic, consumer)  # nothing applied, nothing committed
        assert _lags(runtime, topic) == {str(tp.partition): float(ends[tp]) for tp in partitions}

        busy, moved, other = sorted(partitions, key=lambda tp: -ends[tp])
        assert ends[moved] >= 1
        runtime._applied[busy] = ends[busy] - 1  # this process applied all but its last record
        consumer.assign([busy, other])  # a rebalance gives `moved` to another replica
        await runtime._measure_lag(topic, consumer)
        assert set(_lags(runtime, topic)) == {str(busy.partition), str(other.partition)}
        replica = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, group_id=group, enable_auto_commit=False)
        await replica.start()
        try:
            replica.assign([moved])
            await replica.commit({moved: 1})  # which applies one record and commits
        finally:
            await replica.stop()
        consumer.assign(partitions)  # and `moved` comes back
        await runtime._measure_lag(topic, consumer)
        lags = _lags(runtime, topic)
        assert lags[str(busy.partition)] == 1
        assert lags[str(moved.partition)] == ends[moved] - 1  # from the group's committed offset

        consumer.assign([busy])  # a rebalance took the others away
        await runtime._measure_lag(topic, consumer)
        assert _lags(runtime, topic) == {str(busy.partition): 1.0}
    finally:
        await consumer.stop()
