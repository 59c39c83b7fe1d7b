"""Access export and erasure end to end: membership, consent and the mailer as their own
processes on the real broker, PostgreSQL and an SMTP server.

After an erasure no service holds her personal data, a replay of every topic from
the beginning finds none of it readable, and a replayed old graduation does not
bring her back (a new graduation later is a new member).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from alumni_kit.auth import TokenSigner, issue_operator_token, issue_service_token, parse_keys
from tests.e2e.consent_helpers import staff_headers, started
from tests.e2e.graduations import graduation
from tests.e2e.profile_helpers import alumna, csrf_of, events_on, graduate, member_client, outbox_drained
from tests.smtp import SmtpSink
from tests.stack import SIGNING_KEYS, ServiceProcess, Stack, event_bytes, eventually, opened_values, publish

pytestmark = pytest.mark.real

STUDENT = "7654321"
HER = {
    "student_number": STUDENT,
    "given_name": "Ingeborg",
    "family_name": "Sæbø-Testesen",
    "email": "ingeborg.testesen@example.no",
    "phone": "+4790011223",
}
# What must not be readable anywhere once she is erased (the student number as a JSON
# value: bare digits would also match offsets and counters).
SECRETS = [HER["given_name"], HER["family_name"], HER["email"], HER["phone"], f'"{STUDENT}"']


def her_graduation(
    event_id: str, code: str = "BSL", day: str = "2024-06-14", time: str | None = None
) -> dict[str, Any]:
    event = graduation(event_id, STUDENT, code, "bachelor", day, "TNM", email=HER["email"], phone=HER["phone"])
    event["data"].update(given_name=HER["given_name"], family_name=HER["family_name"])
    if time:
        event["time"] = time
    return event


async def test_export_then_erasure_leaves_nothing_readable_anywhere(
    stack: Stack,
    topic_prefix: str,
    membership_service: ServiceProcess,
    membership_conn: asyncpg.Connection,
    consent_service: ServiceProcess,
    consent_conn: asyncpg.Connection,
    mailer_service: ServiceProcess,
    mailer_conn: asyncpg.Connection,
    smtp_sink: SmtpSink,
) -> None:
    membership_service.env["MEMBERSHIP_EXPORT_SERVICES"] = json.dumps(
        {"consent": consent_service.url, "mailer": mailer_service.url}
    )
    await started(membership_service)
    consent = await started(consent_service)
    await started(mailer_service)
    first = her_graduation("fs-1")
    await publish(stack.bootstrap, topic_prefix + "graduated", [event_bytes(first)])

    # She becomes a member; consent invites her; the mailer (opening the sealed request
    # with her key from membership) delivers the invitation to the SMTP server.
    member_id = await eventually(lambda: _member_id(membership_conn), what="her membership")
    await eventually(lambda: _invited(smtp_sink), what="the invitation at the SMTP server")
    given = httpx.post(
        f"{consent.url}/consent/members/{member_id}/facts",
        json={"channel": "email", "purpose": "newsletter", "state": "given", "reason": "Signed form at the fair"},
        headers=staff_headers("comms"),
    )
    assert given.status_code == 200, given.text
    await eventually(lambda: _has_consent_copy(mailer_conn, member_id), what="the consent at the mailer")

    # Access (art. 15): one document with every service's part.
    export = httpx.get(f"{membership_service.url}/members/{member_id}/export", headers=staff_headers("comms"))
    assert export.status_code == 200, export.text
    doc = export.json()
    assert doc["membership"]["member"]["family_name"] == HER["family_name"]
    assert doc["membership"]["member"]["programmes"][0]["programme_code"] == "BSL"
    assert doc["consent"]["member_copy"][0]["email"] == HER["email"]
    assert [(f["purpose"], f["state"]) for f in doc["consent"]["ledger"]] == [("newsletter", "given")]
    assert doc["consent"]["ledger"][0]["reason"] == "Signed form at the fair"  # what staff recorded for her
    assert doc["mailer"]["member_copy"][0]["given_name"] == HER["given_name"]
    assert [m["kind"] for m in doc["mailer"]["transactional_mail"]] == ["consent-invitation"]
    assert doc["mailer"]["consent_copy"][0]["state"] == "given"
    assert httpx.get(
        f"{membership_service.url}/members/{member_id}/export", headers=staff_headers("ak", "HH")
    ).status_code == 403  # fmt: skip

    # Erasure (art. 17), asked for by staff with a reason.
    erased = httpx.post(
        f"{membership_service.url}/members/{member_id}/erasure",
        json={"reason": "Written request, case 2026/123"},
        headers=staff_headers("comms"),
    )
    assert erased.status_code == 202, erased.text
    assert erased.json()["already"] is False
    again = httpx.post(
        f"{membership_service.url}/members/{member_id}/erasure",
        json={"reason": "Written request, case 2026/123"},
        headers=staff_headers("comms"),
    )
    assert again.json()["already"] is True
    await eventually(lambda: _gone_everywhere(member_id, consent_conn, mailer_conn), what="her erasure everywhere")

    for name, conn in (("membership", membership_conn), ("consent", consent_conn), ("mailer", mailer_conn)):
        assert await _tables_mentioning(conn, SECRETS) == [], f"{name} still holds her personal data"

    # Replaying every topic from the beginning: nothing of hers is readable. Platform
    # topics hold her data sealed with the deleted key; `graduated` (FS writes it in the
    # clear) lost the records membership had applied from her partition.
    records = await _every_record(stack.bootstrap, topic_prefix)
    assert {r.topic.removeprefix(topic_prefix) for r in records} >= {
        "member-registered", "member-erased", "consent-given", "transactional-mail-requested",
    }  # fmt: skip
    readable = [r.topic for r in records if any(s.encode() in _everything_in(r) for s in SECRETS)]
    assert readable == []
    hers = [r for r in records if r.key == member_id.encode() and b'"pd1.' in r.value]
    assert len(hers) >= 2  # member-registered and the invitation request, sealed
    assert await opened_values(hers, membership_service) == [None] * len(hers)  # her key is gone

    # A replay of old graduations (same event, and FS re-sending it with a new id) brings nobody back.
    resent = her_graduation("fs-1-resent")
    other = graduation("fs-other", "5550001", "BSL", "bachelor", "2024-06-14", "TNM")
    await publish(stack.bootstrap, topic_prefix + "graduated", [event_bytes(first), event_bytes(resent)])
    await publish(stack.bootstrap, topic_prefix + "graduated", [event_bytes(other)])
    await eventually(lambda: _member_count(membership_conn, 1), what="the other graduate (after hers in order)")
    assert await membership_conn.fetchval("SELECT count(*) FROM members WHERE student_number = $1", STUDENT) == 0
    metrics = httpx.get(f"{membership_service.url}/metrics").text
    assert "membership_graduations_of_erased_total 1.0" in metrics  # the re-sent one; the same id is a duplicate

    # A new degree after the erasure is a new fact: a new member, with a new id.
    later = her_graduation("fs-2", code="MNAUT", day="2027-06-14", time=datetime.now(UTC).isoformat())
    await publish(stack.bootstrap, topic_prefix + "graduated", [event_bytes(later)])
    new_id = await eventually(lambda: _member_id(membership_conn), what="her new membership")
    assert new_id != member_id
    assert await membership_conn.fetchval("SELECT count(*) FROM programmes WHERE member_id = $1", new_id) == 1


async def _member_id(conn: asyncpg.Connection) -> str | None:
    found = await conn.fetchval("SELECT member_id FROM members WHERE student_number = $1", STUDENT)
    return str(found) if found else None


async def _member_count(conn: asyncpg.Connection, n: int) -> bool:
    return bool(await conn.fetchval("SELECT count(*) FROM members") == n)


async def _invited(sink: SmtpSink) -> bool:
    return any(HER["email"] in m.recipients for m in sink.messages())


async def _has_consent_copy(conn: asyncpg.Connection, member_id: str) -> bool:
    return bool(await conn.fetchval("SELECT count(*) FROM consent_view WHERE member_id = $1", member_id))


async def _gone_everywhere(member_id: str, consent: asyncpg.Connection, mailer: asyncpg.Connection) -> bool:
    in_consent = await consent.fetchval("SELECT count(*) FROM subjects WHERE member_id = $1", member_id)
    in_mailer = await mailer.fetchval("SELECT count(*) FROM members WHERE member_id = $1", member_id)
    return bool(in_consent == 0 and in_mailer == 0)


async def _tables_mentioning(conn: asyncpg.Connection, secrets: list[str]) -> list[str]:
    """Tables of the service's database with any row whose text contains one of `secrets`."""
    tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    found = []
    for (table,) in tables:
        rows = await conn.fetch(f'SELECT t::text AS row FROM "{table}" t')
        if any(s.strip('"') in r["row"] for r in rows for s in secrets):
            found.append(table)
    return found


async def _every_record(bootstrap: str, prefix: str) -> list[Any]:
    """Every record of every topic under `prefix`, from offset 0 to the end (a replay)."""
    lister = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await lister.start()
    try:
        topics = sorted(t for t in await lister.topics() if t.startswith(prefix))
    finally:
        await lister.stop()
    # No group: every partition is assigned, from the earliest offset.
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        records: list[Any] = []
        quiet = 0
        while quiet < 3:  # nothing new is being written: three empty polls in a row mean the end
            batch = await consumer.getmany(timeout_ms=1000)
            quiet = 0 if batch else quiet + 1
            for part in batch.values():
                records.extend(r for r in part if r.value is not None)
        return records
    finally:
        await consumer.stop()


async def test_a_member_erases_herself_from_her_profile(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    await started(membership_service)
    ids = await graduate(stack, topic_prefix, membership_conn, alumna("7000001"))
    member_id = ids["7000001"]
    async with member_client(membership_service, member_id) as client:
        csrf = await csrf_of(client, "/profile/erase")
        unconfirmed = await client.post("/profile/erase", data={"csrf": csrf})
        assert unconfirmed.status_code == 422  # the box says she means it
        forged = await client.post("/profile/erase", data={"csrf": "0" * 64, "confirm": "yes"})
        assert forged.status_code == 403
        assert await _member_id_of(membership_conn, "7000001") == member_id  # nothing happened yet
        done = await client.post("/profile/erase", data={"csrf": csrf, "confirm": "yes"})
        assert done.status_code == 200
        assert 'alumni_session=""' in done.headers["set-cookie"]  # logged out
        # The cookie she may still hold leads nowhere.
        gone = await client.get("/profile", headers={"Accept": "application/json"})
        assert gone.status_code in (401, 404)
        assert (await client.get("/profile/export")).status_code == 404
    assert await _member_id_of(membership_conn, "7000001") is None
    row = await membership_conn.fetchrow("SELECT requested_by, actor, reason FROM erased_subjects")
    assert tuple(row) == ("member", None, None)
    await outbox_drained(membership_conn)
    [erased] = await events_on(stack, topic_prefix + "member-erased", member_id)
    assert erased["data"]["requested_by"] == "member"


async def _member_id_of(conn: asyncpg.Connection, student_number: str) -> str | None:
    found = await conn.fetchval("SELECT member_id::text FROM members WHERE student_number = $1", student_number)
    return str(found) if found else None


async def test_only_known_services_with_a_service_token_get_keys(membership_service: ServiceProcess) -> None:
    membership_service.env["MEMBERSHIP_KEY_OPERATORS"] = '["ops-1"]'
    await started(membership_service)
    url = f"{membership_service.url}/internal/keys/current"
    body = {"subject_ids": [str(uuid.uuid4())]}
    signer = TokenSigner(parse_keys(SIGNING_KEYS))
    assert httpx.post(url, json=body).status_code == 401
    staff = httpx.post(url, json=body, headers=staff_headers("comms"))
    assert staff.status_code == 401  # a staff token is not a service token
    stranger = issue_service_token(signer, "mallory")
    assert httpx.post(url, json=body, headers={"Authorization": f"Bearer {stranger}"}).status_code == 403
    consent = issue_service_token(signer, "consent")
    answer = httpx.post(url, json=body, headers={"Authorization": f"Bearer {consent}"})
    assert answer.status_code == 200
    [key] = answer.json()["keys"]
    assert key["subject_id"] == body["subject_ids"][0]
    too_many = {"subject_ids": [str(uuid.uuid4()) for _ in range(1001)]}
    assert httpx.post(url, json=too_many, headers={"Authorization": f"Bearer {consent}"}).status_code == 422
    # A version beyond the key table's int is the request's fault (422), not a 500 that
    # consumers take for an outage and retry (found by the topic fuzzer).
    lookup = f"{membership_service.url}/internal/keys/lookup"
    beyond = {"keys": [{"subject_id": str(uuid.uuid4()), "version": 2**31}]}
    assert httpx.post(lookup, json=beyond, headers={"Authorization": f"Bearer {consent}"}).status_code == 422
    # An operator named in MEMBERSHIP_KEY_OPERATORS may look keys up (alumni replay --open), never
    # fetch the current ones to seal with; any other operator gets nothing.
    wanted = {"keys": [{"subject_id": key["subject_id"], "version": key["version"]}]}
    operator = {"Authorization": f"Bearer {issue_operator_token(signer, 'ops-1')}"}
    assert httpx.post(lookup, json=wanted, headers=operator).json()["keys"] == [key]
    assert httpx.post(url, json=body, headers=operator).status_code == 403
    other = {"Authorization": f"Bearer {issue_operator_token(signer, 'ops-2')}"}
    assert httpx.post(lookup, json=wanted, headers=other).status_code == 403


def _everything_in(record: Any) -> bytes:
    """Key, value and headers: a replay shows all three."""
    headers = b"".join(k.encode() + v for k, v in record.headers or [])
    return (record.key or b"") + record.value + headers
