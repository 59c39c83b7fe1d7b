"""Publish graduated events with a plain Kafka producer, as FS would."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from tqdm import tqdm


async def publish_events(
    bootstrap: str, topic: str, events: Iterable[dict[str, Any]], total: int | None = None, progress: bool = True
) -> int:
    """Publish CloudEvents dicts keyed by their subject; returns how many were sent."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=10, max_batch_size=256 * 1024
    )
    await producer.start()
    sent = 0
    try:
        pending = []
        bar = tqdm(total=total, unit="ev", desc=f"publish {topic}", disable=not progress, mininterval=1)
        for event in events:
            value = json.dumps(event, ensure_ascii=False).encode()
            pending.append(await producer.send(topic, value=value, key=str(event["subject"]).encode()))
            sent += 1
            if len(pending) >= 5000:
                await _drain(pending, bar)
        await _drain(pending, bar)
        bar.close()
    finally:
        await producer.stop()
    return sent


async def _drain(pending: list[Any], bar: tqdm) -> None:
    for fut in pending:
        await fut
    bar.update(len(pending))
    pending.clear()
