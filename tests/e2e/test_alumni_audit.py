"""`alumni audit member` after a scripted life, and `alumni replay --open`, before and after erasure.

Membership, consent, the mailer and events run as processes on the real broker,
PostgreSQL and an SMTP server. She graduates, is invited, gives consent (staff, with
a reason), gets a newsletter, registers for an event and is checked in at the door, withdraws her consent, and the
newsletter bounces. The audit lists every step in order, each send with the consent
fact it relied on; an operator allowed by the key service opens her sealed fields in a
replay. After her erasure the audit shows only anonymous facts and the replay says her
fields cannot be opened.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from alumni_kit.auth import issue_operator_token
from tests.e2e.alumni_helpers import alumni, alumni_at_once, json_lines
from tests.e2e.consent_helpers import SIGNER, staff_headers
from tests.e2e.events_helpers import act, published_event
from tests.e2e.graduations import graduation
from tests.e2e.mailer_helpers import campaign, until_done
from tests.e2e.test_events_checkin import CHECKIN_KEYS, check_in, code_from_ticket
from tests.smtp import SmtpSink, send_dsn
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish, records_now

pytestmark = pytest.mark.real


STUDENT, EMAIL, GIVEN, FAMILY = "7712345", "solveig.audit@example.no", "Solveig", "Bråten-Auditsen"
SECRETS = [STUDENT, EMAIL, GIVEN, FAMILY]
STEPS = [
    "graduated",
    "member-registered",
    "consent-given",
    "newsletter-sent",
    "event-registered",
    "event-attended",
    "consent-withdrawn",
    "email-bounced",
]


async def test_audit_member_lists_her_life_in_order_and_only_anonymous_facts_after_erasure(
    stack: Stack,
    topic_prefix: str,
    membership_service: ServiceProcess,
    membership_conn: asyncpg.Connection,
    consent_service: ServiceProcess,
    mailer_service: ServiceProcess,
    mailer_conn: asyncpg.Connection,
    events_service: ServiceProcess,
    smtp_sink: SmtpSink,
) -> None:
    membership_service.env["MEMBERSHIP_KEY_OPERATORS"] = '["ops-1"]'
    consent, mailer, events = consent_service, mailer_service, events_service
    events.env["EVENTS_CHECKIN_KEYS"] = CHECKIN_KEYS
    for service in (membership_service, consent, mailer, events):
        service.start()  # all at once: each takes seconds to be ready
    await asyncio.gather(*(s.wait_ready() for s in (membership_service, consent, mailer, events)))

    grad = graduation("fs-life-1", STUDENT, "BSL", "bachelor", "2024-06-14", "TNM", email=EMAIL)
    grad["data"].update(given_name=GIVEN, family_name=FAMILY)
    await publish(stack.bootstrap, topic_prefix + "graduated", [event_bytes(grad)])
    member_id = str(await eventually(lambda: _member_id(membership_conn), what="her membership"))
    await eventually(lambda: _mail_to(smtp_sink, EMAIL, 1), what="the consent invitation")

    _consent(consent, member_id, "given")
    await eventually(lambda: _consent_copy(mailer_conn, member_id, "given"), what="the consent at the mailer")
    await publish(stack.bootstrap, topic_prefix + "campaigns", [event_bytes(campaign("life-1", "TNM"))])
    await until_done(mailer_conn, "life-1")
    newsletter = await eventually(lambda: _newsletter_to(smtp_sink, EMAIL), what="the newsletter")

    event_id = published_event(events, organiser="TNM")
    assert act(events, event_id, member_id).status_code == 201
    checked_in = check_in(events, event_id, code_from_ticket(events, event_id, member_id))
    assert checked_in.status_code == 200, checked_in.text
    _consent(consent, member_id, "withdrawn")
    bounce_port = int(mailer_service.env["MAILER_BOUNCE_LISTEN_PORT"])
    await send_dsn("127.0.0.1", bounce_port, newsletter.sender, newsletter, status="5.1.1")

    # The facts are on their topics (each service's outbox has published them): one audit.
    await eventually(lambda: _all_on_topics(stack, topic_prefix, member_id), what="every step on its topic")
    run = alumni(stack, topic_prefix, "audit", "member", member_id, "--json")
    assert run.returncode == 0, run.stderr
    facts = json_lines(run.stdout)
    topics = [f["topic"] for f in facts]
    assert [t for t in topics if t in STEPS] == STEPS, topics  # in order, each once
    assert [f["time"] for f in facts] == sorted(f["time"] for f in facts)
    by_topic = {f["topic"]: f for f in facts}
    assert by_topic["graduated"]["details"]["programme_code"] == "BSL"
    assert by_topic["member-registered"]["details"]["graduated_event_ids"] == ["fs-life-1"]
    assert by_topic["member-registered"]["details"]["personal_data"] == "sealed (not shown)"
    given = by_topic["consent-given"]
    assert (given["details"]["source"], given["details"]["purpose"]) == ("staff", "newsletter")
    sent = by_topic["newsletter-sent"]["details"]
    assert sent["campaign_id"] == "life-1"
    assert sent["consent_fact_id"] == given["event_id"] == given["details"]["fact_id"]
    assert sent["relied_on"] == {
        "found": True,
        "fact_id": given["event_id"],
        "state": "given",
        "channel": "email",
        "purpose": "newsletter",
        "sequence": given["details"]["sequence"],
        "source": "staff",
        "method": given["details"]["method"],
        "recorded_at": given["details"]["recorded_at"],
    }
    assert by_topic["event-registered"]["details"]["event_id"] == event_id
    assert by_topic["event-registered"]["details"]["event_title"].startswith("Alumnikveld")
    assert by_topic["event-attended"]["details"]["status"] == "attended"
    assert by_topic["consent-withdrawn"]["details"]["purpose"] == "newsletter"
    assert (by_topic["email-bounced"]["details"]["kind"], by_topic["email-bounced"]["details"]["status"]) == (
        "hard",
        "5.1.1",
    )
    assert [s for s in SECRETS if s in run.stdout] == []  # the audit shows no personal data

    # Her sealed fields in a replay: sealed, opened for an allowed operator, refused to another.
    plain, opened, refused = await alumni_at_once(
        stack,
        topic_prefix,
        (["replay", "member-registered", "--key", member_id], None),
        _open_replay(member_id, membership_service, "ops-1"),
        _open_replay(member_id, membership_service, "ops-2"),
    )
    [sealed] = json_lines(plain.stdout)
    assert sealed["event"]["data"]["given_name"].startswith("pd1.")
    assert "given_name" in sealed["sealed"]
    assert sealed["valid"] is True
    assert opened.returncode == 0, opened.stderr
    [line] = json_lines(opened.stdout)
    assert (line["event"]["data"]["given_name"], line["event"]["data"]["email"]) == (GIVEN, EMAIL)
    assert "sealed" not in line
    assert refused.returncode == 5, refused.stderr

    # Erasure: the graduation records membership applied leave the broker; her keys are gone.
    erased = httpx.post(
        f"{membership_service.url}/members/{member_id}/erasure",
        json={"reason": "Written request, case 2026/777"},
        headers=staff_headers("comms"),
    )
    assert erased.status_code == 202, erased.text

    async def erased_in_the_log() -> bool:
        graduations = await records_now(stack.bootstrap, topic_prefix + "graduated")
        return not graduations and bool(await _hers(stack, topic_prefix + "member-erased", member_id))

    await eventually(erased_in_the_log, what="her erasure in the log")
    run, table, gone = await alumni_at_once(
        stack,
        topic_prefix,
        (["audit", "member", member_id, "--json"], None),
        (["audit", "member", member_id], None),
        _open_replay(member_id, membership_service, "ops-1"),
    )
    assert run.returncode == 0, run.stderr
    after = json_lines(run.stdout)
    assert "graduated" not in {f["topic"] for f in after}
    assert [f["topic"] for f in after if f["topic"] in STEPS] == STEPS[1:]
    assert {f["details"].get("personal_data") for f in after if "personal_data" in f["details"]} == {
        "erased (unreadable)"
    }
    for fact in ("registered", "consent given", "newsletter sent", "consent withdrawn", "erased"):
        assert fact in table.stdout
    assert "only anonymous facts remain" in table.stdout
    assert [s for s in SECRETS if s in run.stdout + table.stdout] == []
    assert gone.returncode == 0, gone.stderr
    [line] = json_lines(gone.stdout)
    assert line["erased"] is True
    assert line["event"]["data"]["given_name"].startswith("pd1.")
    assert [s for s in SECRETS if s in gone.stdout] == []


async def _hers(stack: Stack, topic: str, member_id: str) -> list[Any]:
    """Her records on `topic`: keyed by her id, or naming her in `data.member_id`."""
    records = await records_now(stack.bootstrap, topic)
    return [
        r
        for r in records
        if r.key == member_id.encode()
        or f'"member_id": "{member_id}"'.encode() in r.value
        or f'"member_id":"{member_id}"'.encode() in r.value
    ]


async def _all_on_topics(stack: Stack, prefix: str, member_id: str) -> bool:
    for step in STEPS[1:]:
        if not await _hers(stack, prefix + step, member_id):
            return False
    return True


def _open_replay(member_id: str, membership: ServiceProcess, operator: str) -> tuple[list[str], dict[str, str]]:
    """The arguments and environment of `alumni replay member-registered --key ID --open` as `operator`."""
    args = ["replay", "member-registered", "--key", member_id, "--open", "--membership-url", membership.url]
    return args, {"ALUMNI_OPERATOR_TOKEN": issue_operator_token(SIGNER, operator)}


def _consent(consent: ServiceProcess, member_id: str, state: str) -> None:
    answer = httpx.post(
        f"{consent.url}/consent/members/{member_id}/facts",
        json={"channel": "email", "purpose": "newsletter", "state": state, "reason": "Asked at the front desk"},
        headers=staff_headers("comms"),
    )
    assert answer.status_code == 200, answer.text


async def _member_id(conn: asyncpg.Connection) -> str | None:
    found = await conn.fetchval("SELECT member_id::text FROM members WHERE student_number = $1", STUDENT)
    return str(found) if found else None


async def _mail_to(sink: SmtpSink, address: str, n: int) -> list[Any] | None:
    mails = [m for m in sink.messages() if address in m.recipients]
    return mails if len(mails) >= n else None


async def _newsletter_to(sink: SmtpSink, address: str) -> Any:
    subject = campaign("x")["data"]["subject"]
    return next((m for m in sink.messages() if address in m.recipients and m.parsed["Subject"] == subject), None)


async def _consent_copy(conn: asyncpg.Connection, member_id: str, state: str) -> bool:
    found = await conn.fetchval(
        "SELECT state FROM consent_view WHERE member_id = $1 AND channel = 'email' AND purpose = 'newsletter'",
        member_id,
    )
    return bool(found == state)
