"""Campaigns on the real broker, database and an SMTP server: who gets a newsletter,
what it looks like, and what bounces and the staff API do."""

from __future__ import annotations

import re
from email.message import EmailMessage

import asyncpg
import httpx
import pytest

from tests.e2e.consent_helpers import member_erased, staff_headers, started
from tests.e2e.mailer_helpers import campaign, consent_fact, load, members, until_done, values
from tests.smtp import SmtpSink, send_dsn
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish, read_topic

pytestmark = pytest.mark.real


async def test_a_faculty_campaign_reaches_exactly_its_consenting_members(
    stack: Stack,
    topic_prefix: str,
    mailer_service: ServiceProcess,
    mailer_conn: asyncpg.Connection,
    smtp_sink: SmtpSink,
) -> None:
    mailer = await started(mailer_service)
    tnm = members(6, "TNM", "tnm")
    consenting, _, withdrawn, bouncing, erased, lapsed = tnm
    hh = members(1, "HH", "hh")
    facts = await load(
        stack, topic_prefix, mailer_conn, [*tnm, *hh], [consenting, withdrawn, bouncing, erased, lapsed, hh[0]]
    )
    ids = {name: p["data"]["member_id"] for name, p in zip(
        ["consenting", "no_consent", "withdrawn", "bouncing", "erased", "lapsed"], tnm, strict=True)}  # fmt: skip
    await publish(stack.bootstrap, topic_prefix + "consent-withdrawn", [
        event_bytes(consent_fact(ids["withdrawn"], 2, "withdrawn")),
        event_bytes(consent_fact(ids["lapsed"], 2, "withdrawn")),
    ])  # fmt: skip
    # The lapsed member gave again... with an OLDER sequence, arriving late: it must not count.
    await publish(
        stack.bootstrap, topic_prefix + "consent-given", [event_bytes(consent_fact(ids["lapsed"], 1, "given"))]
    )
    await publish(stack.bootstrap, topic_prefix + "member-erased", [event_bytes(member_erased(ids["erased"]))])
    smtp_sink.reject("tnm3@example.no")  # the bouncing member's mailbox does not exist

    async def settled() -> bool:
        withdrawals = await mailer_conn.fetchval("SELECT count(*) FROM consent_view WHERE state = 'withdrawn'")
        gone = await mailer_conn.fetchval("SELECT count(*) FROM erased_members")
        return bool(withdrawals == 2 and gone == 1)

    await eventually(settled, what="withdrawals and the erasure at the mailer")
    await publish(stack.bootstrap, topic_prefix + "campaigns", [event_bytes(campaign("tnm-dec", "TNM"))])
    await until_done(mailer_conn, "tnm-dec")

    [message] = smtp_sink.messages()
    assert message.recipients == ("tnm0@example.no",)
    mail = message.parsed
    assert isinstance(mail, EmailMessage)
    assert str(mail["To"]) == "Åse0 Ødegård <tnm0@example.no>"
    assert str(mail["Subject"]) == "Nytt fra fakultetet – æøå"
    assert str(mail["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    unsubscribe = str(mail["List-Unsubscribe"])
    assert re.fullmatch(
        r"<https://alumni\.usn\.no/unsubscribe/[\w.-]+>, <mailto:unsubscribe@alumni\.usn\.no\?subject=unsubscribe>",
        unsubscribe,
    )
    assert re.fullmatch(r"bounce\+c\d+\.[0-9a-f]{10}@bounces\.alumni\.usn\.no", message.sender)
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Hei Åse0!" in text
    assert "Hei Åse0!" in html
    assert "/t/c/" in html  # the link is tracked; the redirect is signed

    sent = values(await read_topic(stack.bootstrap, topic_prefix + "newsletter-sent", 1))
    assert [(s["data"]["member_id"], s["data"]["consent_fact_id"], s["data"]["message_id"]) for s in sent] == [
        (ids["consenting"], facts[ids["consenting"]], str(mail["Message-ID"]))
    ]
    status = httpx.get(f"{mailer.url}/campaigns/tnm-dec", headers=staff_headers("ak", "TNM")).json()
    # The erased member is in nobody's audience any more; three lack consent (never, withdrawn, lapsed).
    assert (status["status"], status["recipients"], status["sent"], status["bounced"]) == ("done", 5, 1, 1)
    assert status["skipped"] == {"no-consent": 3}
    [bounced] = values(await read_topic(stack.bootstrap, topic_prefix + "email-bounced", 1))
    assert (bounced["data"]["member_id"], bounced["data"]["kind"], bounced["data"]["suppressed"]) == (
        ids["bouncing"],
        "hard",
        True,
    )
    assert httpx.get(f"{mailer.url}/campaigns/tnm-dec", headers=staff_headers("ak", "HH")).status_code == 403

    # The next campaign skips the suppressed address; the consenting member gets a second one.
    await publish(stack.bootstrap, topic_prefix + "campaigns", [event_bytes(campaign("tnm-jan", "TNM"))])
    await until_done(mailer_conn, "tnm-jan")
    assert smtp_sink.recipient_counts() == {"tnm0@example.no": 2}
    second = httpx.get(f"{mailer.url}/campaigns/tnm-jan", headers=staff_headers("comms")).json()
    assert second["skipped"] == {"no-consent": 3, "suppressed": 1}


async def test_a_hard_bounce_dsn_suppresses_the_address(
    stack: Stack,
    topic_prefix: str,
    mailer_service: ServiceProcess,
    mailer_conn: asyncpg.Connection,
    smtp_sink: SmtpSink,
) -> None:
    await started(mailer_service)
    people = members(2, "HS", "hs")
    await load(stack, topic_prefix, mailer_conn, people, people)
    await publish(stack.bootstrap, topic_prefix + "campaigns", [event_bytes(campaign("hs-1", "HS"))])
    await until_done(mailer_conn, "hs-1")
    bounced_mail = next(m for m in smtp_sink.messages() if m.recipients == ("hs1@example.no",))

    # The remote MTA accepted it, then bounces it to the VERP return path.
    bounce_port = int(mailer_service.env["MAILER_BOUNCE_LISTEN_PORT"])
    await send_dsn("127.0.0.1", bounce_port, bounced_mail.sender, bounced_mail, status="5.1.1")
    [event] = values(await read_topic(stack.bootstrap, topic_prefix + "email-bounced", 1))
    assert (event["data"]["member_id"], event["data"]["status"]) == (people[1]["data"]["member_id"], "5.1.1")
    assert event["data"]["address"].startswith("pd1.")  # sealed with her key, never in the clear
    assert await mailer_conn.fetchval("SELECT reason FROM suppressions WHERE address = 'hs1@example.no'") == (
        "hard-bounce"
    )
    # A bounce to a return path we did not sign is refused at RCPT and changes nothing.
    forged = bounced_mail.sender.replace(bounced_mail.sender.split(".")[1][:10], "0" * 10)
    with pytest.raises(Exception, match="550"):
        await send_dsn("127.0.0.1", bounce_port, forged, smtp_sink.messages()[0])
    assert await mailer_conn.fetchval("SELECT count(*) FROM suppressions") == 1

    await publish(stack.bootstrap, topic_prefix + "campaigns", [event_bytes(campaign("hs-2", "HS"))])
    await until_done(mailer_conn, "hs-2")
    assert smtp_sink.recipient_counts() == {"hs0@example.no": 2, "hs1@example.no": 1}


async def test_soft_bounces_suppress_at_the_threshold(
    stack: Stack,
    topic_prefix: str,
    mailer_service: ServiceProcess,
    mailer_conn: asyncpg.Connection,
    smtp_sink: SmtpSink,
) -> None:
    mailer_service.env["MAILER_SOFT_BOUNCE_THRESHOLD"] = "2"
    await started(mailer_service)
    people = members(1, "HIU", "hiu")
    await load(stack, topic_prefix, mailer_conn, people, people)
    bounce_port = int(mailer_service.env["MAILER_BOUNCE_LISTEN_PORT"])
    for n in (1, 2):
        await publish(stack.bootstrap, topic_prefix + "campaigns", [event_bytes(campaign(f"hiu-{n}", "HIU"))])
        await until_done(mailer_conn, f"hiu-{n}")
        mail = smtp_sink.messages()[-1]
        await send_dsn("127.0.0.1", bounce_port, mail.sender, mail, status="4.2.2", action="delayed",
                       diagnostic="smtp; 452 4.2.2 mailbox full")  # fmt: skip
        if n == 1:  # one soft bounce: counted, not suppressed
            assert await mailer_conn.fetchval("SELECT count FROM soft_bounces") == 1
            assert await mailer_conn.fetchval("SELECT count(*) FROM suppressions") == 0
    assert await mailer_conn.fetchval("SELECT reason FROM suppressions") == "soft-bounces"
    [event] = values(await read_topic(stack.bootstrap, topic_prefix + "email-bounced", 1))
    assert (event["data"]["kind"], event["data"]["status"]) == ("soft", "4.2.2")


async def test_a_scheduled_campaign_can_be_cancelled_and_sends_nothing(
    stack: Stack,
    topic_prefix: str,
    mailer_service: ServiceProcess,
    mailer_conn: asyncpg.Connection,
    smtp_sink: SmtpSink,
) -> None:
    mailer = await started(mailer_service)
    people = members(3, "TNM", "tnm")
    await load(stack, topic_prefix, mailer_conn, people, people)
    later = {k: v for k, v in campaign("tnm-later", "TNM")["data"].items() if k != "requested_by"}
    later["send_at"] = "2099-01-01T08:00:00+01:00"
    assert httpx.post(f"{mailer.url}/campaigns", json=later, headers=staff_headers("ak", "TNM")).status_code == 202

    async def scheduled() -> bool:
        return await mailer_conn.fetchval("SELECT status FROM campaigns WHERE campaign_id = 'tnm-later'") == (
            "scheduled"
        )

    await eventually(scheduled, what="the campaign scheduled")
    url = f"{mailer.url}/campaigns/tnm-later/cancel"
    assert httpx.post(url, headers=staff_headers("ak", "HH")).status_code == 403
    assert httpx.post(url, headers=staff_headers("ak", "TNM")).json()["status"] == "cancelled"
    assert httpx.post(url, headers=staff_headers("ak", "TNM")).status_code == 409
    statuses = values(await read_topic(stack.bootstrap, topic_prefix + "campaign-status", 2))
    assert [s["data"]["status"] for s in statuses] == ["scheduled", "cancelled"]
    assert smtp_sink.count() == 0
