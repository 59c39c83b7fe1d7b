"""Campaigns never stop the mailer (issue 10): a template that fails or explodes when
rendered is refused before it is accepted (staff API: 422 with its line; `campaigns`
topic: the campaign is `failed` on campaign-status), one that fails only at send time
fails alone, and transactional mail and other campaigns go on. Also: a campaign whose
event would exceed the topic's limit is refused, counting bytes."""

from __future__ import annotations

import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.e2e.consent_helpers import staff_headers, started
from tests.e2e.graduations import graduation
from tests.e2e.mailer_helpers import campaign, consent_fact, load, members, until_done, values
from tests.smtp import SmtpSink
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish, read_topic

pytestmark = pytest.mark.real

# MAILER_RENDER_TIMEOUT_SECONDS's default, and what the mailer may add (a worker killed and restarted)
RENDER_BUDGET = 2.0
SLACK = 3.0


def _api_body(campaign_id: str, faculty: str = "HH", **data: Any) -> dict[str, Any]:
    body = {k: v for k, v in campaign(campaign_id, faculty)["data"].items() if k != "requested_by"}
    return {**body, **data}


async def _statuses(stack: Stack, prefix: str, count: int) -> dict[str, list[dict[str, Any]]]:
    by_campaign: dict[str, list[dict[str, Any]]] = {}
    for status in values(await read_topic(stack.bootstrap, prefix + "campaign-status", count)):
        by_campaign.setdefault(status["data"]["campaign_id"], []).append(status["data"])
    return by_campaign


async def test_a_template_that_fails_when_rendered_is_refused_by_the_staff_api_with_its_line(
    mailer_service: ServiceProcess, mailer_conn: asyncpg.Connection
) -> None:
    mailer = await started(mailer_service)
    url, headers = f"{mailer.url}/campaigns", staff_headers("comms")
    failing = {
        "Hei {{ given_name }}!\n\nSvaret er {{ 1/0 }}.": (3, "division by zero"),
        "Hei!\n{{ x.__class__ }}": (2, "unsafe"),
        "Hei {{ given_name.__class__.__mro__ }}": (1, "unsafe"),
        "Hei!\n\n\n{{ fornavn }}": (4, "'fornavn' is undefined; available: given_name, family_name"),
    }
    for body, (line, words) in failing.items():
        answer = httpx.post(url, json=_api_body(f"c-{uuid.uuid4().hex[:8]}", body_markdown=body), headers=headers)
        assert answer.status_code == 422, answer.text
        [problem] = answer.json()["detail"]
        assert (problem["loc"], problem["line"]) == (["body", "body_markdown"], line)
        assert words in problem["msg"]
        assert f"line {line}" in problem["msg"]

    ok = httpx.post(url, json=_api_body("hh-ok"), headers=headers)
    assert ok.status_code == 202
    await until_done(mailer_conn, "hh-ok")
    assert await mailer_conn.fetchval("SELECT array_agg(campaign_id) FROM campaigns") == ["hh-ok"]


async def test_a_failing_campaign_on_the_topic_is_failed_alone_and_the_next_one_is_delivered(
    stack: Stack,
    topic_prefix: str,
    mailer_service: ServiceProcess,
    mailer_conn: asyncpg.Connection,
    smtp_sink: SmtpSink,
) -> None:
    mailer = await started(mailer_service)
    people = members(2, "TNM", "tnm")
    await load(stack, topic_prefix, mailer_conn, people, people)
    broken = campaign("tnm-broken", "TNM", body_markdown="Hei {{ given_name }}!\n\n{{ 1/0 }}")
    fine = campaign("tnm-fine", "TNM")
    # A plain producer, as another communications tool would publish them; the broken one first.
    await publish(stack.bootstrap, topic_prefix + "campaigns", [event_bytes(broken), event_bytes(fine)])

    await until_done(mailer_conn, "tnm-fine")
    assert smtp_sink.recipient_counts() == {"tnm0@example.no": 1, "tnm1@example.no": 1}
    row = await mailer_conn.fetchrow("SELECT status, failure_reason FROM campaigns WHERE campaign_id = 'tnm-broken'")
    assert (row["status"], row["failure_reason"]) == ("failed", "template line 3: division by zero")
    assert await mailer_conn.fetchval("SELECT count(*) FROM deliveries WHERE campaign_id = 'tnm-broken'") == 0
    # failed (broken); scheduled, sending, done (fine)
    statuses = await _statuses(stack, topic_prefix, 4)
    assert [(s["status"], s.get("reason")) for s in statuses["tnm-broken"]] == [
        ("failed", "template line 3: division by zero")
    ]
    assert [s["status"] for s in statuses["tnm-fine"]][-1] == "done"
    seen = httpx.get(f"{mailer.url}/campaigns/tnm-broken", headers=staff_headers("comms")).json()
    assert (seen["status"], seen["reason"], seen["recipients"]) == ("failed", "template line 3: division by zero", 0)


async def test_a_campaign_failing_at_send_time_fails_alone_and_a_login_mail_still_arrives(
    stack: Stack,
    topic_prefix: str,
    membership_service: ServiceProcess,
    membership_conn: asyncpg.Connection,
    mailer_service: ServiceProcess,
    mailer_conn: asyncpg.Connection,
    smtp_sink: SmtpSink,
) -> None:
    """The campaign of the report (`Hei {{ 1/0 }}`, accepted by a mailer before templates were
    checked) is in the mailer's database when this version starts: it must fail alone."""
    membership = await started(membership_service)
    await started(mailer_service)
    email = "kari.lie@example.no"
    await publish(stack.bootstrap, topic_prefix + "graduated", [event_bytes(graduation("g-1", "345678", email=email))])
    member_id = str(await eventually(lambda: membership_conn.fetchval("SELECT member_id::text FROM members")))
    fact = consent_fact(member_id, 1, "given")
    await publish(stack.bootstrap, topic_prefix + "consent-given", [event_bytes(fact)])

    async def her_copies() -> bool:
        member = await mailer_conn.fetchval("SELECT count(*) FROM members WHERE member_id = $1", member_id)
        consent = await mailer_conn.fetchval("SELECT count(*) FROM consent_view WHERE member_id = $1", member_id)
        return bool(member == consent == 1)

    await eventually(her_copies, what="her member copy and consent at the mailer")
    await mailer_conn.execute(
        """INSERT INTO campaigns (campaign_id, requested_by, faculty, purpose, audience, subject, body_markdown,
                                  language, track_opens, send_at)
           VALUES ('usn-old', 'comms@usn.no', 'USN', 'newsletter', '{}', 'Hei', 'Hei {{ 1/0 }}', 'nb', false, now())"""
    )

    async def failed() -> Any:
        return await mailer_conn.fetchrow(
            "SELECT status, failure_reason FROM campaigns WHERE campaign_id = 'usn-old' AND status = 'failed'"
        )

    row = await eventually(failed, timeout=30, what="the old campaign failed")
    assert row["failure_reason"] == "template line 1: division by zero"
    delivery = await mailer_conn.fetchrow("SELECT state, reason FROM deliveries WHERE campaign_id = 'usn-old'")
    assert (delivery["state"], delivery["reason"]) == ("skipped", "campaign-failed")
    # scheduled is never published for a row written by hand: sending, failed
    statuses = await _statuses(stack, topic_prefix, 2)
    assert [(s["status"], s.get("reason")) for s in statuses["usn-old"]][-1] == (
        "failed",
        "template line 1: division by zero",
    )

    asked = time.monotonic()
    answer = httpx.post(f"{membership.url}/login", json={"email": email})
    assert answer.status_code == 202
    [mail] = await smtp_sink.wait_for(1, timeout=30)
    assert mail.recipients == (email,)
    assert "/login/confirm?token=" in mail.parsed.get_body(("plain",)).get_content()
    assert mail.arrived > asked

    async def recorded() -> bool:
        return bool(await mailer_conn.fetchval("SELECT state FROM transactional WHERE kind = 'magic-link'") == "sent")

    await eventually(recorded, timeout=10, what="the login mail recorded as sent")
    assert "sender failed" not in mailer_service.log_path.read_text()


EXPLOSIVE = {
    "range": "{{ range(100001)|list|length }}",
    "nested loops": "Hei!\n{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
    "huge output": "{% for a in range(10000) %}{% for b in range(1000) %}{{ given_name }}{% endfor %}{% endfor %}",
    "repetition": "{{ 'x' * 1000000000 }}",
    "power": "{{ 2 ** 100000000 }}",
    "padding": "{{ 'x'|center(2000000000) }}",
    "recursion": "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "doubling": "{% set s = namespace(v='xy') %}{% for i in range(64) %}{% set s.v = s.v ~ s.v %}{% endfor %}",
}


async def test_explosive_templates_are_refused_quickly_and_the_mailer_goes_on(
    mailer_service: ServiceProcess, mailer_conn: asyncpg.Connection, smtp_sink: SmtpSink
) -> None:
    mailer = await started(mailer_service)
    url, headers = f"{mailer.url}/campaigns", staff_headers("comms")
    took: dict[str, float] = {}
    for name, body in EXPLOSIVE.items():
        start = time.monotonic()
        answer = httpx.post(url, json=_api_body(f"x-{uuid.uuid4().hex[:8]}", body_markdown=body), headers=headers)
        took[name] = time.monotonic() - start
        assert answer.status_code == 422, (name, answer.text)
        assert answer.json()["detail"][0]["type"] == "template"
        # While a template is being refused the service answers (the event loop is free).
        assert httpx.get(f"{mailer.url}/healthz").status_code == 200
    print("refused in", {name: round(seconds, 2) for name, seconds in took.items()})
    assert max(took.values()) < RENDER_BUDGET + SLACK, took

    ok = httpx.post(url, json=_api_body("hh-after"), headers=headers)
    assert ok.status_code == 202
    await until_done(mailer_conn, "hh-after")


async def test_a_campaign_whose_event_exceeds_the_topic_limit_is_refused_counting_bytes(
    mailer_service: ServiceProcess, mailer_conn: asyncpg.Connection
) -> None:
    mailer = await started(mailer_service)
    url, headers = f"{mailer.url}/campaigns", staff_headers("comms")
    # 150,000 characters pass the contract's 200,000-character limit, but 'ø' is two bytes in
    # UTF-8: 300,000 bytes, more than the 256 KiB a campaigns event may be.
    too_big = httpx.post(url, json=_api_body("hh-big", body_markdown="ø" * 150_000), headers=headers)
    assert too_big.status_code == 413, too_big.text
    [problem] = too_big.json()["detail"]
    assert problem["ctx"]["limit"] == 262_144
    assert problem["ctx"]["size"] > 300_000
    assert "262144 bytes" in problem["msg"]

    # 240,000 bytes and the envelope fit: accepted, and the whole way (topic, consumer) takes it.
    fits = httpx.post(url, json=_api_body("hh-fits", body_markdown="ø" * 120_000), headers=headers)
    assert fits.status_code == 202, fits.text
    await until_done(mailer_conn, "hh-fits")
    assert await mailer_conn.fetchval("SELECT count(*) FROM campaigns") == 1
