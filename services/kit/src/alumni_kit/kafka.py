"""Kafka clients and topics shared by the services."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, replace

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)

# The broker's largest message is 4 MiB (deploy/kafka), and a dead-letter topic takes its
# topic's limit plus 64 KiB (kafka.with_dlq): the dead letter of a 4 MiB `graduated`
# message, with its reason headers, must still leave the producer.
MAX_REQUEST_BYTES = 4 * 1024 * 1024 + 128 * 1024


def idempotent_producer(bootstrap: str, client_id: str) -> AIOKafkaProducer:
    """acks=all with idempotence: a retried send is never written twice."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,  # the outbox relay fills whole batches during a backfill
        max_request_size=MAX_REQUEST_BYTES,
    )


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int = -1  # facts are kept: replay for audits and projection rebuilds
    max_message_bytes: int = 1024 * 1024

    def new_topic(self) -> NewTopic:
        configs = {"retention.ms": str(self.retention_ms), "max.message.bytes": str(self.max_message_bytes)}
        return NewTopic(self.name, self.partitions, 1, topic_configs=configs)


DAY_MS = 24 * 3600 * 1000


def with_dlq(spec: TopicSpec) -> list[TopicSpec]:
    """The topic and its dead-letter topic, which must hold anything the topic held.

    Dead letters are kept 90 days for inspection and re-drive, but never longer
    than the topic keeps its messages: a short retention is a privacy choice.
    """
    keep = 90 * DAY_MS if spec.retention_ms < 0 else min(90 * DAY_MS, spec.retention_ms)
    dlq = TopicSpec(f"{spec.name}.dlq", 1, retention_ms=keep, max_message_bytes=spec.max_message_bytes + 65536)
    return [spec, dlq]


async def ensure_topics(bootstrap: str, specs: list[TopicSpec], prefix: str = "") -> list[str]:
    """Create the topics that are missing (names after `prefix`); returns the names created now."""
    specs = [replace(s, name=prefix + s.name) for s in specs]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s.new_topic() for s in specs if s.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process created it meanwhile
                await admin.create_topics(missing)
        return [t.name for t in missing]
    finally:
        await admin.close()
