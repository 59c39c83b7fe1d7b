"""`alumni dlq`: a dead letter whose cause is fixed is redriven and processed once.

The cause here is on the consumer's side, as after a bug: a database rule the
graduation breaks (a CHECK constraint an operator added by mistake). Membership
tries the record three times and dead-letters it as `processing-error`; the
operator lists it (reasons, never values), removes the rule, and redrives it, twice
by accident: the member exists once, with one programme and one `member-registered`.
"""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.e2e.alumni_helpers import alumni, json_lines
from tests.e2e.consent_helpers import started
from tests.e2e.graduations import graduation
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, group_lag, publish, read_topic, records_now

pytestmark = pytest.mark.real


async def test_a_fixed_dead_letter_redriven_is_processed_once(
    stack: Stack,
    topic_prefix: str,
    membership_service: ServiceProcess,
    membership_conn: asyncpg.Connection,
    membership_db: str,
) -> None:
    await started(membership_service)
    admin = await asyncpg.connect(stack.admin_dsn(membership_db))
    try:
        await admin.execute("ALTER TABLE programmes ADD CONSTRAINT no_mistake CHECK (programme_code <> 'MISTAKE')")
        event = graduation("dl-1", "7300011", code="MISTAKE", email="dl.test@example.no")
        await publish(stack.bootstrap, topic_prefix + "graduated", [event_bytes(event)])
        await read_topic(stack.bootstrap, topic_prefix + "graduated.dlq", 1)

        listed = alumni(stack, topic_prefix, "dlq", "list", "graduated", "--json")
        assert listed.returncode == 0, listed.stderr
        [letter] = json_lines(listed.stdout)
        assert (letter["kind"], letter["original_topic"], letter["dlq_offset"]) == (
            "processing-error",
            topic_prefix + "graduated",
            0,
        )
        assert "no_mistake" in letter["reason"]
        assert letter["consumer_group"] == membership_service.env["MEMBERSHIP_GROUP_ID"] + ".graduated"
        table = alumni(stack, topic_prefix, "dlq", "list", "graduated.dlq").stdout
        shown = alumni(stack, topic_prefix, "dlq", "show", "graduated", "0")
        assert shown.returncode == 0, shown.stderr
        [details] = json_lines(shown.stdout)
        assert (details["event_id"], details["event_type"]) == ("dl-1", "no.usn.fs.graduated.v1")
        for text in (listed.stdout, table, shown.stdout):  # reasons, never values (nor the key)
            assert all(secret not in text for secret in ("7300011", "Åse", "dl.test@"))
        assert alumni(stack, topic_prefix, "dlq", "show", "graduated", "7").returncode == 3
        assert await membership_conn.fetchval("SELECT count(*) FROM members") == 0

        await admin.execute("ALTER TABLE programmes DROP CONSTRAINT no_mistake")  # the fix
    finally:
        await admin.close()
    first = alumni(stack, topic_prefix, "dlq", "redrive", "graduated", "--all")
    assert first.returncode == 0, first.stderr
    again = alumni(stack, topic_prefix, "dlq", "redrive", "graduated", "--offsets", "0")
    assert again.returncode == 0, again.stderr

    group = membership_service.env["MEMBERSHIP_GROUP_ID"] + ".graduated"

    async def both_consumed() -> bool:
        ends = len(await records_now(stack.bootstrap, topic_prefix + "graduated"))
        return ends == 3 and await group_lag(stack.bootstrap, group, topic_prefix + "graduated") == 0

    await eventually(both_consumed, what="both redriven copies consumed and committed")
    assert await membership_conn.fetchval("SELECT count(*) FROM members") == 1
    assert await membership_conn.fetchval("SELECT count(*) FROM programmes WHERE programme_code = 'MISTAKE'") == 1
    member_id = str(await membership_conn.fetchval("SELECT member_id::text FROM members"))

    async def registered() -> list[object]:
        records = await records_now(stack.bootstrap, topic_prefix + "member-registered")
        return [r for r in records if r.key == member_id.encode()]

    assert len(await eventually(registered, what="member-registered")) == 1
    assert len(await records_now(stack.bootstrap, topic_prefix + "graduated.dlq")) == 1, "not dead-lettered again"
    # The second copy was known to membership's inbox by its event id: counted a duplicate, not applied.
    metrics = httpx.get(f"{membership_service.url}/metrics").text
    [duplicates] = [
        line
        for line in metrics.splitlines()
        if line.startswith("alumni_messages_consumed_total{")
        and 'outcome="duplicate"' in line
        and f'topic="{topic_prefix}graduated"' in line
    ]
    assert duplicates.endswith(" 1.0")
