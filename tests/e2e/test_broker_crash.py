"""The Kafka broker itself dies (SIGKILL) and comes back on its data, while the services run on.

No service process is restarted: each must ride out the outage on its own (producers retry,
consumers rejoin their groups and resume from their committed offsets, the outbox holds what
could not be published) and catch up: nothing lost, nothing applied or mailed twice.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.consent_helpers import staff_headers, started
from tests.e2e.expect import expected_members, expected_programmes, member_count, stored_programmes
from tests.e2e.mailer_helpers import campaign, campaign_state, consent_fact, load, members, until_done, values
from tests.smtp import SmtpSink
from tests.stack import (
    ServiceProcess,
    Stack,
    consumer_lags,
    event_bytes,
    eventually,
    publish,
    read_topic,
    records_now,
)
from usn_tools.alumni.dlq import read_dead_letters
from usn_tools.fs_demo import graduation_events

pytestmark = pytest.mark.real
STREAM = 20_000
# Published after the restart: FS goes on publishing once the broker is back.
AFTER_RESTART = 4_000
# How long the broker stays down before its restart begins. The restart itself takes 6-20 s on
# the 2-core test machine, longer than a consumer's session (10 s): every group is evicted and
# rejoins either way, so a longer outage would only make the test slower.
DOWN_SECONDS = 3.0


def _group(service: ServiceProcess) -> str:
    return service.env[service.module.upper() + "_GROUP_ID"]


@dataclass(frozen=True)
class Seen:
    """What a check saw; true once `ok`, so that eventually() names the values when it gives up."""

    ok: bool
    values: dict[str, float]

    def __bool__(self) -> bool:
        return self.ok


async def _caught_up(stack: Stack, prefix: str, *services: ServiceProcess) -> Seen:
    """Every consumer group of `services` has committed all its topic holds (lag 0)."""
    lags: dict[str, float] = {}
    try:
        for service in services:
            lags |= await consumer_lags(stack.bootstrap, _group(service), prefix)
    except KafkaError as exc:  # the coordinator may still be loading the groups after the restart
        return Seen(False, {type(exc).__name__: -1})
    return Seen(bool(lags) and not any(lags.values()), lags)


def _alive_as_before(pids: dict[str, int], *services: ServiceProcess) -> None:
    for service in services:
        assert service.proc is not None
        assert service.proc.poll() is None, f"{service.module} died with the broker\n{service.tail()}"
        assert service.proc.pid == pids[service.module], f"{service.module} was restarted"


def _ids_per_subject(records: list[Any]) -> dict[str, set[str]]:
    """Distinct event ids per envelope subject (the envelope is plain; personal fields are sealed)."""
    out: dict[str, set[str]] = {}
    for record in records:
        envelope = json.loads(record.value)
        out.setdefault(envelope["subject"], set()).add(envelope["id"])
    return out


async def _outbox_empty(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT count(*) FROM outbox") == 0)


async def _crash_the_broker(stack: Stack) -> None:
    await asyncio.to_thread(stack.kill_kafka)
    # The outage itself, not a poll: the services must live through it without the broker.
    await asyncio.sleep(DOWN_SECONDS)
    await asyncio.to_thread(stack.start_kafka)


# ---- 20,000 graduations: membership → member-registered → consent → invitations ------------------------


async def test_broker_killed_mid_stream_loses_and_duplicates_no_member_and_every_service_catches_up(
    stack: Stack,
    topic_prefix: str,
    membership_service: ServiceProcess,
    consent_service: ServiceProcess,
    membership_conn: asyncpg.Connection,
    consent_conn: asyncpg.Connection,
) -> None:
    events = list(graduation_events(STREAM, seed=30))
    before, after = events[:-AFTER_RESTART], events[-AFTER_RESTART:]
    await started(membership_service)
    await started(consent_service)
    pids = {s.module: s.proc.pid for s in (membership_service, consent_service) if s.proc}
    # A plain producer, as FS publishes; it has finished before the broker dies (what FS does
    # with an outage of its own is not the platform's to test).
    await publish(stack.bootstrap, topic_prefix + "graduated", [event_bytes(e) for e in before])

    async def under_way() -> bool:
        return await member_count(membership_conn) >= 2000

    await eventually(under_way, timeout=90, what="the stream under way")
    assert await member_count(membership_conn) < len(expected_members(before)), "the crash must land mid-stream"
    await _crash_the_broker(stack)
    _alive_as_before(pids, membership_service, consent_service)
    await publish(stack.bootstrap, topic_prefix + "graduated", [event_bytes(e) for e in after])

    # Membership: every programme of every graduate once, no member twice.
    want = expected_programmes(events)

    async def all_there() -> bool:
        return await stored_programmes(membership_conn) == want

    await eventually(all_there, timeout=150, what="every programme after the broker's restart")
    rows = await membership_conn.fetch("SELECT student_number, member_id, email FROM members")
    assert {r[0] for r in rows} == expected_members(events)
    assert len(rows) == len(expected_members(events)), "a graduate became two members"
    member_ids = {str(r[1]) for r in rows}

    # member-registered: one fact per member. The relay publishes at least once (a republished
    # record carries the same event id), so the topic is read whole once the outbox is empty.
    await eventually(lambda: _outbox_empty(membership_conn), timeout=60, what="membership's outbox published")
    registered = await records_now(stack.bootstrap, topic_prefix + "member-registered")
    facts = _ids_per_subject(registered)
    assert set(facts) == member_ids
    assert max(len(ids) for ids in facts.values()) == 1, "a member was registered twice"

    # Consent: a copy of every member, and one invitation for each member with an address.
    with_address = {str(r[1]) for r in rows if r[2] is not None}

    async def consent_has_all() -> bool:
        known = await consent_conn.fetchval("SELECT count(*) FROM subjects")
        invited = await consent_conn.fetchval("SELECT count(*) FROM subjects WHERE invited_at IS NOT NULL")
        pending = await consent_conn.fetchval("SELECT count(*) FROM outbox")
        return bool(known == len(member_ids) and invited == len(with_address) and pending == 0)

    await eventually(consent_has_all, timeout=90, what="consent's copies and invitations")
    assert {r[0] for r in await consent_conn.fetch("SELECT member_id FROM subjects")} == member_ids
    requested = await records_now(stack.bootstrap, topic_prefix + "transactional-mail-requested")
    invitations = _ids_per_subject(requested)
    assert set(invitations) == with_address, "every member with an address is invited"
    assert max(len(ids) for ids in invitations.values()) == 1, "a member was invited twice"

    # Caught up without a restart: nothing left unconsumed, nothing dead-lettered for the outage.
    services = (membership_service, consent_service)
    await eventually(lambda: _caught_up(stack, topic_prefix, *services), timeout=30, what="consumer lag 0")
    _alive_as_before(pids, membership_service, consent_service)
    for topic in ("graduated.dlq", "member-registered.dlq"):
        assert await read_dead_letters(stack.bootstrap, topic_prefix + topic) == [], f"an outage went to {topic}"


# ---- a newsletter campaign: mailer (SMTP, outbox → newsletter-sent, campaign-status) -------------------


def _create_campaign(mailer: ServiceProcess, campaign_id: str, faculty: str) -> None:
    """Through the staff API: the request goes to the mailer's outbox, then to `campaigns`."""
    body = {k: v for k, v in campaign(campaign_id, faculty)["data"].items() if k != "requested_by"}
    created = httpx.post(f"{mailer.url}/campaigns", json=body, headers=staff_headers("comms"))
    assert created.status_code == 202, created.text


def _addresses(people: list[dict[str, Any]]) -> set[str]:
    return {p["data"]["email"] for p in people}


def _metric(service: ServiceProcess, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(httpx.get(f"{service.url}/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def _outage_shows(service: ServiceProcess) -> Seen:
    """Not ready, and the relay's wait for the broker on the metrics the outbox alerts watch."""
    seen = {
        "ready": float(httpx.get(f"{service.url}/readyz").status_code == 200),
        "backlog": _metric(service, "alumni_outbox_backlog_messages"),
        "relay_waits": _metric(service, "alumni_transient_retries_total", operation="outbox_relay"),
    }
    return Seen(not seen["ready"] and seen["backlog"] > 0 and seen["relay_waits"] > 0, seen)


async def _one_sent_fact_each(
    stack: Stack, prefix: str, conn: asyncpg.Connection, people: list[dict[str, Any]]
) -> None:
    """What the outbox held during the outage reached the topic: one newsletter-sent per recipient
    (a republished record carries the same event id)."""
    await eventually(lambda: _outbox_empty(conn), timeout=60, what="the mailer's outbox published")
    records = await records_now(stack.bootstrap, prefix + "newsletter-sent")
    per_member = Counter(e["data"]["member_id"] for e in {e["id"]: e for e in values(records)}.values())
    assert set(per_member) == {p["data"]["member_id"] for p in people}
    assert max(per_member.values()) == 1


async def test_broker_killed_mid_campaign_mails_no_one_twice_and_the_mailer_goes_on(
    stack: Stack,
    topic_prefix: str,
    mailer_service: ServiceProcess,
    mailer_conn: asyncpg.Connection,
    smtp_sink: SmtpSink,
) -> None:
    # 3,000 take at least 50 s: the broker's restart (6-33 s on the 2-core test machine) lands inside.
    mailer_service.env["MAILER_RATE_LIMIT_PER_SECOND"] = "60"
    await started(mailer_service)
    pids = {"mailer": mailer_service.proc.pid} if mailer_service.proc else {}
    hh, hs = members(3000, "HH", "hh"), members(100, "HS", "hs")
    await load(stack, topic_prefix, mailer_conn, hh + hs, hh + hs)
    await publish(stack.bootstrap, topic_prefix + "campaigns", [event_bytes(campaign("hh-broker", "HH"))])
    await smtp_sink.wait_for(300, timeout=120)

    await asyncio.to_thread(stack.kill_kafka)
    at_kill = smtp_sink.count()
    # Sending needs the database and the relay only: it goes on; its facts wait in the outbox.
    # So does the staff API: a campaign created now is published once the broker is back.
    _create_campaign(mailer_service, "hs-during", "HS")
    await eventually(lambda: _outage_shows(mailer_service), timeout=30, what="the outage in /readyz and /metrics")
    await smtp_sink.wait_for(at_kill + 200, timeout=30)
    await asyncio.to_thread(stack.start_kafka)
    assert await campaign_state(mailer_conn, "hh-broker") == "sending", "the restart must land mid-campaign"
    _alive_as_before(pids, mailer_service)
    await until_done(mailer_conn, "hh-broker", timeout=120)
    await until_done(mailer_conn, "hs-during", timeout=60)

    # Everyone once; none uncertain: the mailer's policy (docs/mailer.md) marks a delivery uncertain
    # only when the SMTP transfer broke or the sender died, and neither happened.
    counts = smtp_sink.recipient_counts()
    assert max(counts.values()) == 1, "someone got a newsletter twice"
    assert set(counts) == _addresses(hh + hs)
    for campaign_id in ("hh-broker", "hs-during"):
        listed = httpx.get(f"{mailer_service.url}/campaigns/{campaign_id}/uncertain", headers=staff_headers("comms"))
        assert listed.json()["uncertain"] == []
    await _one_sent_fact_each(stack, topic_prefix, mailer_conn, hh + hs)

    async def reported_done() -> bool:
        statuses = values(await read_topic(stack.bootstrap, topic_prefix + "campaign-status", 1, timeout=1))
        done = {s["subject"] for s in statuses if s["data"]["status"] == "done"}
        return done >= {"hh-broker", "hs-during"}

    await eventually(reported_done, timeout=30, what="campaign-status done")

    # The mailer goes on: new members and consent reach it, and a campaign created after the
    # restart is delivered to them.
    newcomers = members(200, "TNM", "tnm")
    await publish(stack.bootstrap, topic_prefix + "member-registered", [event_bytes(p) for p in newcomers])
    facts = [consent_fact(p["data"]["member_id"], 1, "given") for p in newcomers]
    await publish(stack.bootstrap, topic_prefix + "consent-given", [event_bytes(f) for f in facts])

    async def knows_newcomers() -> bool:
        n = await mailer_conn.fetchval(
            "SELECT count(*) FROM consent_view WHERE member_id = any($1::text[])",
            [p["data"]["member_id"] for p in newcomers],
        )
        return bool(n == len(newcomers))

    await eventually(knows_newcomers, timeout=60, what="the newcomers' consent at the mailer")
    _create_campaign(mailer_service, "tnm-after", "TNM")
    await until_done(mailer_conn, "tnm-after", timeout=60)
    counts = smtp_sink.recipient_counts()
    assert set(counts) == _addresses(hh + hs + newcomers)
    assert max(counts.values()) == 1

    await eventually(lambda: _caught_up(stack, topic_prefix, mailer_service), timeout=30, what="consumer lag 0")
    _alive_as_before(pids, mailer_service)
