"""Both content modes of the CloudEvents Kafka binding reach membership, published with
the official SDK and a plain Kafka client: structured (the platform's own) and binary
(`ce_*` headers, data as the value: the SDKs' default)."""

from __future__ import annotations

import asyncpg
import pytest
from cloudevents.core.bindings.kafka import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat

from tests.e2e.consent_helpers import started
from tests.e2e.graduations import graduation
from tests.stack import ServiceProcess, Stack, eventually, publish, records_now
from tests.unit.test_binary_mode import sdk_event

pytestmark = pytest.mark.real


async def test_graduations_in_either_content_mode_become_members(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    await started(membership_service)
    topic = topic_prefix + "graduated"
    binary = to_binary(sdk_event(graduation("bin-1", "5557001")), JSONFormat())
    structured = to_structured(sdk_event(graduation("str-1", "5557002")), JSONFormat())
    for message, key in ((binary, b"5557001"), (structured, b"5557002")):
        await publish(stack.bootstrap, topic, [(key, message.value)], headers=list(message.headers.items()))

    async def both() -> bool:
        rows = await membership_conn.fetch("SELECT student_number FROM members ORDER BY 1")
        return [r[0] for r in rows] == ["5557001", "5557002"]

    await eventually(both, what="both graduates as members")
    assert await records_now(stack.bootstrap, topic + ".dlq") == []
