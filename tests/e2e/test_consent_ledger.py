"""The ledger under load and abuse: 200 concurrent changes for one member, erasure,
the append-only rule, and bad events on consent's input topics."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import uuid
from collections import defaultdict
from typing import Any

import asyncpg
import httpx
import pytest

from alumni_kit.auth import issue_member_link, issue_unsubscribe_token
from alumni_kit.dlq import H_ERROR_KIND, H_REASON
from tests.e2e.consent_helpers import SIGNER, member_erased, member_registered, register, staff_headers, started
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish, read_topic

pytestmark = pytest.mark.real
PURPOSES = ["newsletter", "events", "evu"]


@pytest.fixture
async def consent(consent_service: ServiceProcess) -> ServiceProcess:
    consent_service.env["CONSENT_INVITATIONS_ENABLED"] = "false"
    return await started(consent_service)


def _change(consent: ServiceProcess, member_id: str, rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    """One random change through one of the three ways in: staff API, preference centre, one-click."""
    purpose = rng.choice(PURPOSES)
    way = rng.choice(["staff", "preferences", "unsubscribe"])
    if way == "staff":
        body = {
            "channel": rng.choice(["email", "sms"]),
            "purpose": purpose,
            "state": rng.choice(["given", "withdrawn"]),
        }
        return (
            "POST",
            f"{consent.url}/consent/members/{member_id}/facts",
            {
                "json": {**body, "reason": "Load test of the ledger"},
                "headers": staff_headers("comms"),
            },
        )
    if way == "preferences":
        token = issue_member_link(SIGNER, member_id, "preferences", 600, "n")
        ticked = {f"email:{p}": "on" for p in rng.sample(PURPOSES, rng.randint(0, 3))}
        return "POST", f"{consent.url}/preferences", {"data": {"token": token, **ticked}}
    token = issue_unsubscribe_token(SIGNER, member_id, purpose, 600)
    return "POST", f"{consent.url}/unsubscribe/{token}", {"data": {"List-Unsubscribe": "One-Click"}}


async def test_200_concurrent_changes_leave_one_consistent_ledger(
    stack: Stack, topic_prefix: str, consent: ServiceProcess, consent_conn: asyncpg.Connection
) -> None:
    member = member_registered()
    member_id = member["data"]["member_id"]
    await register(stack, topic_prefix, consent_conn, member)
    # A proven address, so preference-centre saves record e-mail consent at once.
    await consent_conn.execute("UPDATE subjects SET email_verified_at = now() WHERE member_id = $1", member_id)
    rng = random.Random(8058)
    changes = [_change(consent, member_id, rng) for _ in range(200)]
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        answers = await asyncio.gather(*(client.request(m, url, **kw) for m, url, kw in changes))
    assert {a.status_code for a in answers} == {200}

    facts = await consent_conn.fetch(
        "SELECT sequence, channel, purpose, state, fact_id FROM ledger WHERE member_id = $1 ORDER BY sequence",
        member_id,
    )
    assert len(facts) > 20  # the random mix does change things
    assert [f["sequence"] for f in facts] == list(range(1, len(facts) + 1)), "gap-free, in order"
    by_key: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in facts:
        by_key[(f["channel"], f["purpose"])].append(f["state"])
    for key, states in by_key.items():
        assert all(a != b for a, b in itertools.pairwise(states)), f"{key}: a fact that changed nothing"
    current = {
        (r["channel"], r["purpose"]): (r["state"], r["sequence"])
        for r in await consent_conn.fetch("SELECT * FROM current_consent WHERE member_id = $1", member_id)
    }
    last = {(f["channel"], f["purpose"]): (f["state"], f["sequence"]) for f in facts}
    assert current == last
    assert await consent_conn.fetchval("SELECT last_sequence FROM subjects WHERE member_id = $1", member_id) == len(
        facts
    )

    given = sum(1 for f in facts if f["state"] == "given")
    on_topics = [
        *await read_topic(stack.bootstrap, topic_prefix + "consent-given", given),
        *await read_topic(stack.bootstrap, topic_prefix + "consent-withdrawn", len(facts) - given),
    ]
    published = sorted((json.loads(r.value)["sequence"], json.loads(r.value)["id"]) for r in on_topics)
    assert published == [(f["sequence"], f["fact_id"]) for f in facts]


async def test_erasure_keeps_anonymous_proof_and_a_replay_does_not_bring_her_back(
    stack: Stack, topic_prefix: str, consent: ServiceProcess, consent_conn: asyncpg.Connection
) -> None:
    member, other = member_registered(), member_registered()
    member_id = member["data"]["member_id"]
    await register(stack, topic_prefix, consent_conn, member, other)
    given = httpx.post(
        f"{consent.url}/consent/members/{member_id}/facts",
        json={
            "channel": "email",
            "purpose": "events",
            "state": "given",
            "reason": "Paper form signed by Kari Nordmann",
        },
        headers=staff_headers("comms"),
    ).json()["fact"]
    prefs = issue_member_link(SIGNER, member_id, "preferences", 600, "n")
    saved = httpx.post(
        f"{consent.url}/preferences", data={"token": prefs, "email:newsletter": "on", "email:events": "on"}
    )  # opt-in pending
    assert saved.status_code == 200, saved.text
    assert await consent_conn.fetchval("SELECT count(*) FROM pending_optins WHERE member_id = $1", member_id) == 1

    await publish(stack.bootstrap, topic_prefix + "member-erased", [event_bytes(member_erased(member_id))])

    async def erased() -> bool:
        return bool(await consent_conn.fetchval("SELECT count(*) FROM erased_members WHERE member_id = $1", member_id))

    await eventually(erased, what="the erasure")
    for table in ("subjects", "current_consent", "pending_optins", "ledger"):
        left = await consent_conn.fetchval(f"SELECT count(*) FROM {table} WHERE member_id = $1", member_id)
        assert left == 0, f"{table} still holds the member"
    proof = await consent_conn.fetchrow("SELECT * FROM ledger WHERE fact_id = $1", given["fact_id"])
    assert proof["member_id"] is None
    assert proof["reason"] is None  # it named her
    assert (proof["state"], proof["channel"], proof["purpose"], proof["erased"]) == ("given", "email", "events", True)
    anonymous = httpx.get(f"{consent.url}/consent/facts/{given['fact_id']}", headers=staff_headers("comms")).json()
    assert anonymous["fact"]["member_id"] is None
    assert (
        httpx.get(f"{consent.url}/consent/facts/{given['fact_id']}", headers=staff_headers("ak", "TNM")).status_code
        == 403
    )
    assert await consent_conn.fetchval("SELECT count(*) FROM subjects") == 1  # the other member is untouched

    # Her old member-registered, replayed (as by a topic replay): she is not brought back,
    # and her old unsubscribe link says there is nothing left.
    replay = {**member, "id": "replayed-" + member["id"]}
    await publish(stack.bootstrap, topic_prefix + "member-registered", [event_bytes(replay)])
    await register(stack, topic_prefix, consent_conn, member_registered())  # a later event got through
    assert await consent_conn.fetchval("SELECT count(*) FROM subjects WHERE member_id = $1", member_id) == 0
    facts_before = await consent_conn.fetchval("SELECT count(*) FROM ledger")
    unsubscribe = f"{consent.url}/unsubscribe/{issue_unsubscribe_token(SIGNER, member_id, 'events', 600)}"
    answer = httpx.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert (answer.status_code, answer.text) == (200, "nothing to unsubscribe: no such member")
    assert await consent_conn.fetchval("SELECT count(*) FROM ledger") == facts_before
    assert await consent_conn.fetchval("SELECT count(*) FROM outbox WHERE key = $1", member_id.encode()) == 0
    # The staff reason named her; it was never published, so no topic still holds it.
    [published] = await read_topic(stack.bootstrap, topic_prefix + "consent-given", 1)
    assert b"Kari Nordmann" not in published.value


async def test_the_ledger_refuses_updates_and_deletes(
    stack: Stack, topic_prefix: str, consent: ServiceProcess, consent_conn: asyncpg.Connection
) -> None:
    member = member_registered()
    member_id = member["data"]["member_id"]
    await register(stack, topic_prefix, consent_conn, member)
    token = issue_unsubscribe_token(SIGNER, member_id, "newsletter", 600)
    httpx.post(f"{consent.url}/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    for sql in (
        "UPDATE ledger SET state = 'given'",
        "DELETE FROM ledger",
        "TRUNCATE ledger",
    ):
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await consent_conn.execute(sql)
    other = str(uuid.uuid4())
    for rewrite in (
        "UPDATE ledger SET state = 'given'",
        f"UPDATE ledger SET member_id = '{other}'",
        "UPDATE ledger SET source = 'preference-centre', method = 'double-opt-in'",
        "UPDATE ledger SET member_id = NULL, erased = true, method = 'double-opt-in'",
        "UPDATE ledger SET reason = 'rewritten evidence'",
    ):
        # The erasure exception clears who, never what: none of these passes, even with the flag set.
        async with consent_conn.transaction():
            await consent_conn.execute("SET LOCAL consent.erasing = 'on'")
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await consent_conn.execute(rewrite)
    assert await consent_conn.fetchval("SELECT state FROM ledger WHERE member_id = $1", member_id) == "withdrawn"


async def test_bad_events_are_dead_lettered_and_good_ones_flow(
    stack: Stack, topic_prefix: str, consent: ServiceProcess, consent_conn: asyncpg.Connection
) -> None:
    good = member_registered()
    no_faculties = member_registered()
    del no_faculties["data"]["faculties"]
    bad = [(b"k1", b"not json"), event_bytes(no_faculties), (b"k3", None)]
    await publish(stack.bootstrap, topic_prefix + "member-registered", [*bad, event_bytes(good)])
    await publish(stack.bootstrap, topic_prefix + "member-erased", [(b"k4", b'{"specversion": "1.0", "type": "x"}')])

    async def known() -> bool:
        return bool(await consent_conn.fetchval("SELECT count(*) FROM subjects WHERE member_id = $1", good["subject"]))

    await eventually(known, what="the good member")
    dead = await read_topic(stack.bootstrap, topic_prefix + "member-registered.dlq", 3)
    reasons = {dict(d.headers)[H_ERROR_KIND]: dict(d.headers)[H_REASON] for d in dead}
    assert set(reasons) == {b"not-json", b"invalid", b"empty"}
    assert b"data.faculties" in reasons[b"invalid"]
    assert b"Kari" not in reasons[b"invalid"]  # reasons never echo personal data
    [erased_dead] = await read_topic(stack.bootstrap, topic_prefix + "member-erased.dlq", 1)
    assert dict(erased_dead.headers)[H_ERROR_KIND] == b"unknown-type"
