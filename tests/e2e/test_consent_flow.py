"""End to end across two services: a graduation in FS becomes a member, the member
is invited, asks for the newsletter, confirms by e-mail, and consent-given is published."""

from __future__ import annotations

import json

import asyncpg
import httpx
import pytest

from tests.e2e.consent_helpers import mails_for, started, token_of
from tests.e2e.graduations import graduation
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish, read_topic
from usn_tools.alumni.dlq import read_dead_letters

pytestmark = pytest.mark.real


async def test_graduation_to_confirmed_newsletter_consent(
    stack: Stack,
    topic_prefix: str,
    membership_service: ServiceProcess,
    consent_service: ServiceProcess,
    consent_conn: asyncpg.Connection,
) -> None:
    await started(membership_service)
    consent = await started(consent_service)
    event = graduation("flow-1", "812345", email="signe.haugen@example.no", faculty="HS")
    await publish(stack.bootstrap, topic_prefix + "graduated", [event_bytes(event)])

    async def subject() -> asyncpg.Record | None:
        return await consent_conn.fetchrow("SELECT member_id, email, faculties FROM subjects")

    known = await eventually(subject, what="consent to learn of the new member")
    member_id = known["member_id"]
    assert (known["email"], known["faculties"]) == ("signe.haugen@example.no", ["HS"])

    [invitation] = await mails_for(stack, topic_prefix, member_id, 1, consent_service)
    assert invitation["data"]["to_address"] == "signe.haugen@example.no"
    token = token_of(invitation["data"]["action_url"])
    saved = httpx.post(f"{consent.url}/preferences", data={"token": token, "email:newsletter": "on"})
    assert saved.status_code == 200

    confirmation = (await mails_for(stack, topic_prefix, member_id, 2, consent_service))[-1]["data"]
    assert confirmation["kind"] == "consent-confirmation"
    confirmed = httpx.post(f"{consent.url}/preferences/confirm", data={"token": token_of(confirmation["action_url"])})
    assert confirmed.status_code == 200

    [record] = await read_topic(stack.bootstrap, topic_prefix + "consent-given", 1)
    given = json.loads(record.value)
    assert record.key == member_id.encode()
    assert given["type"] == "no.usn.alumni.consent-given.v1"
    assert (given["sequence"], given["id"]) == (1, given["data"]["fact_id"])
    assert {k: given["data"][k] for k in ("member_id", "channel", "purpose", "state", "method")} == {
        "member_id": member_id,
        "channel": "email",
        "purpose": "newsletter",
        "state": "given",
        "method": "double-opt-in",
    }


async def test_an_address_fs_accepts_but_the_mailer_cannot_take_keeps_the_member_without_an_invitation(
    stack: Stack,
    topic_prefix: str,
    membership_service: ServiceProcess,
    consent_service: ServiceProcess,
    consent_conn: asyncpg.Connection,
) -> None:
    """Found by the topic fuzzer: graduated's address rule is looser than the mail contract's, so
    consent's invitation for such an address failed to build and the member-registered event was
    dead-lettered: consent never knew her. Now she is kept and simply not invited there."""
    await started(membership_service)
    consent = await started(consent_service)
    odd = graduation("odd-1", "812346", email="kari..nordmann@example.no")  # two dots in a row
    ordinary = graduation("odd-2", "812347", email="ola.hansen@example.no")
    await publish(stack.bootstrap, topic_prefix + "graduated", [event_bytes(odd), event_bytes(ordinary)])

    async def both() -> list[asyncpg.Record] | None:
        rows = await consent_conn.fetch("SELECT member_id, email FROM subjects ORDER BY email")
        return rows if len(rows) == 2 else None

    kari, ola = await eventually(both, what="consent to know both members")
    assert kari["email"] == "kari..nordmann@example.no"
    [invitation] = await mails_for(stack, topic_prefix, ola["member_id"], 1, consent_service)
    assert invitation["data"]["to_address"] == "ola.hansen@example.no"
    metrics = httpx.get(f"{consent.url}/metrics").text
    assert 'consent_invitations_not_sent_total{why="address"} 1.0' in metrics
    assert await read_dead_letters(stack.bootstrap, topic_prefix + "member-registered.dlq") == []
