"""The mailer and bad input: invalid campaign messages, staff API refusals, header
injection through names and subjects; and transactional mail and click tracking."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from alumni_kit.dlq import H_ERROR_KIND, H_REASON
from tests import events
from tests.e2e.consent_helpers import staff_headers, started
from tests.e2e.mailer_helpers import campaign, load, members, until_done, values
from tests.events import cloud_event
from tests.smtp import SmtpSink
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish, read_topic

pytestmark = pytest.mark.real


async def test_bad_campaigns_are_refused_with_reasons(
    stack: Stack,
    topic_prefix: str,
    mailer_service: ServiceProcess,
    mailer_conn: asyncpg.Connection,
    smtp_sink: SmtpSink,
) -> None:
    mailer = await started(mailer_service)
    people = members(2, "HH", "hh")
    await load(stack, topic_prefix, mailer_conn, people, people)
    no_subject = campaign("bad-1", "HH")
    del no_subject["data"]["subject"]
    lottery = campaign("bad-2", "HH", purpose="lottery")
    await publish(stack.bootstrap, topic_prefix + "campaigns", [event_bytes(no_subject), event_bytes(lottery)])
    dead = await read_topic(stack.bootstrap, topic_prefix + "campaigns.dlq", 2)
    reasons = {dict(d.headers)[H_ERROR_KIND]: dict(d.headers)[H_REASON] for d in dead}
    assert b"data.subject" in reasons[b"invalid"]
    assert b"unknown purpose 'lottery'" in reasons[b"processing-error"]

    url = f"{mailer.url}/campaigns"
    body = {k: v for k, v in campaign("api-1", "HH")["data"].items() if k != "requested_by"}
    assert httpx.post(url, json=body, headers=staff_headers("ak", "TNM")).status_code == 403
    assert httpx.post(url, json=body, headers=staff_headers("at", "HH")).status_code == 403
    unknown = httpx.post(url, json={**body, "purpose": "lottery"}, headers=staff_headers("ak", "HH"))
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["ctx"]["expected"] == ["newsletter", "events", "evu", "research", "career"]
    broken = httpx.post(
        url, json={**body, "body_markdown": "Hei!\n\n{% if given_name %}\nNo end"}, headers=staff_headers("ak", "HH")
    )
    assert broken.status_code == 422
    assert broken.json()["detail"][0]["line"] == 3  # where the unclosed block opens

    created = httpx.post(url, json=body, headers=staff_headers("ak", "HH"))
    assert created.status_code == 202
    await until_done(mailer_conn, "api-1")
    assert httpx.post(url, json=body, headers=staff_headers("ak", "HH")).status_code == 409
    member_id = people[0]["data"]["member_id"]
    preview = httpx.get(f"{url}/api-1/preview", params={"member_id": member_id}, headers=staff_headers("ak", "HH"))
    assert "Hei Åse0!" in preview.json()["text"]
    assert smtp_sink.recipient_counts() == {"hh0@example.no": 1, "hh1@example.no": 1}


async def test_no_header_injection_through_names_or_subjects(
    stack: Stack,
    topic_prefix: str,
    mailer_service: ServiceProcess,
    mailer_conn: asyncpg.Connection,
    smtp_sink: SmtpSink,
) -> None:
    await started(mailer_service)
    [person] = members(1, "HS", "hs")
    person["data"]["given_name"] = "Eve\r\nBcc: victim@example.no"
    person["data"]["family_name"] = "X\nX-Injected: yes"
    await load(stack, topic_prefix, mailer_conn, [person], [person])
    evil = campaign("hs-evil", "HS", subject="Hello\r\nBcc: another@example.no")
    await publish(stack.bootstrap, topic_prefix + "campaigns", [event_bytes(evil)])
    await until_done(mailer_conn, "hs-evil")
    [message] = smtp_sink.messages()
    assert message.recipients == ("hs0@example.no",)
    head = message.raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^(Bcc|X-Injected):", head, re.MULTILINE | re.IGNORECASE)
    assert message.parsed["Bcc"] is None
    assert "Bcc: another@example.no" in str(message.parsed["Subject"])  # shown as text, on one line


def mail_request(kind: str, address: str, expires: datetime | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": kind,
        "member_id": str(uuid.uuid4()),
        "to_address": address,
        "to_name": "Kari Nordmann",
        "language": "nb",
        "subject": "Bekreft e-postadressen din",
        "body_text": "Hei Kari!\n\nTrykk på lenken: https://alumni.usn.no/preferences/confirm?token=x",
        "action_url": "https://alumni.usn.no/preferences/confirm?token=x",
        "action_label": "Bekreft",
    }
    if expires:
        data["expires_at"] = expires.isoformat()
    return cloud_event(
        "no.usn.alumni.transactional-mail-requested.v1", str(data["member_id"]), data, source=events.CONSENT
    )


async def test_transactional_mail_is_sent_once_and_respects_suppression_and_expiry(
    stack: Stack,
    topic_prefix: str,
    mailer_service: ServiceProcess,
    mailer_conn: asyncpg.Connection,
    smtp_sink: SmtpSink,
) -> None:
    await started(mailer_service)
    await mailer_conn.execute("INSERT INTO suppressions (address, reason) VALUES ('gone@example.no', 'hard-bounce')")
    ok = mail_request("consent-confirmation", "kari@example.no")
    requests = [
        ok,
        ok,  # delivered twice by the broker: sent once
        mail_request("magic-link", "gone@example.no"),
        mail_request("magic-link", "late@example.no", expires=datetime.now(UTC) - timedelta(minutes=1)),
    ]
    await publish(stack.bootstrap, topic_prefix + "transactional-mail-requested", [event_bytes(r) for r in requests])

    async def settled() -> bool:
        open_ = await mailer_conn.fetchval("SELECT count(*) FROM transactional WHERE state IN ('pending', 'sending')")
        total = await mailer_conn.fetchval("SELECT count(*) FROM transactional")
        return bool(total == 3 and open_ == 0)

    await eventually(settled, what="the transactional mail handled")
    [message] = await smtp_sink.wait_for(1, timeout=10)
    assert message.recipients == ("kari@example.no",)
    assert str(message.parsed["Auto-Submitted"]) == "auto-generated"
    assert "Trykk på lenken" in message.parsed.get_body(("plain",)).get_content()
    reasons = dict(await mailer_conn.fetch("SELECT kind || ':' || (mail->>'to_address'), reason FROM transactional"))
    assert reasons == {
        "consent-confirmation:kari@example.no": None,
        "magic-link:gone@example.no": "suppressed",
        "magic-link:late@example.no": "expired",
    }


async def test_clicks_redirect_where_the_author_linked_and_are_recorded(
    stack: Stack,
    topic_prefix: str,
    mailer_service: ServiceProcess,
    mailer_conn: asyncpg.Connection,
    smtp_sink: SmtpSink,
) -> None:
    mailer = await started(mailer_service)
    people = members(1, "TNM", "tnm")
    await load(stack, topic_prefix, mailer_conn, people, people)
    await publish(
        stack.bootstrap, topic_prefix + "campaigns", [event_bytes(campaign("tnm-click", "TNM", track_opens=True))]
    )
    await until_done(mailer_conn, "tnm-click")
    html = smtp_sink.messages()[0].parsed.get_body(("html",)).get_content()
    [click] = re.findall(r'href="([^"]*/t/c/[^"]+)"', html)
    [pixel] = re.findall(r'src="([^"]*/t/o/[^"]+)"', html)
    followed = httpx.get(click.replace("&amp;", "&"), follow_redirects=False)
    assert (followed.status_code, followed.headers["location"]) == (302, "https://www.usn.no/alumni/jul")
    assert httpx.get(pixel).headers["content-type"] == "image/gif"
    assert httpx.get(f"{mailer.url}/t/c/forged.token", follow_redirects=False).status_code == 404
    [clicked] = values(await read_topic(stack.bootstrap, topic_prefix + "email-clicked", 1))
    [opened] = values(await read_topic(stack.bootstrap, topic_prefix + "email-opened", 1))
    member_id = people[0]["data"]["member_id"]
    assert (clicked["data"]["member_id"], clicked["data"]["url"]) == (member_id, "https://www.usn.no/alumni/jul")
    assert (opened["data"]["campaign_id"], opened["data"]["member_id"]) == ("tnm-click", member_id)
