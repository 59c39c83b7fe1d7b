"""Bounces: signed VERP return paths, DSN parsing, the bounce listener, and the test SMTP server."""

from __future__ import annotations

import logging
import os
import time
from email.message import EmailMessage
from email.utils import make_msgid
from typing import cast

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailer.bounces import (
    MAX_BOUNCE_BYTES,
    BounceHandler,
    DsnRecipient,
    delivery_of,
    original_message_id,
    parse_dsn,
    return_path,
)
from tests.smtp import SmtpSink, build_dsn, send_dsn
from tests.stack import free_port

KEY = b"a-test-verp-key-of-enough-length"
LOCAL, DOMAIN = "bounce", "bounces.alumni.usn.no"

# Samples as the MTAs write them (addresses and hosts changed) ---------------------------------

POSTFIX_HARD = b"""\
Return-Path: <>
Date: Tue, 4 Mar 2025 10:12:03 +0100 (CET)
From: MAILER-DAEMON@mx1.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: bounce+c123.3f9a1b2c4d@bounces.alumni.usn.no
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="A1B2C3D4E5.1741079523/mx1.example.org"
Content-Transfer-Encoding: 8bit
Message-Id: <20250304091203.0F1A2B3C4D@mx1.example.org>

This is a MIME-encapsulated message.

--A1B2C3D4E5.1741079523/mx1.example.org
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx1.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<kari.nordmann@example.org>: host mx2.example.org[192.0.2.7] said: 550 5.1.1
    <kari.nordmann@example.org>: Recipient address rejected: User unknown in
    virtual mailbox table (in reply to RCPT TO command)

--A1B2C3D4E5.1741079523/mx1.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx1.example.org
X-Postfix-Queue-ID: A1B2C3D4E5
X-Postfix-Sender: rfc822; bounce+c123.3f9a1b2c4d@bounces.alumni.usn.no
Arrival-Date: Tue,  4 Mar 2025 10:12:02 +0100 (CET)

Final-Recipient: rfc822; kari.nordmann@example.org
Original-Recipient: rfc822;kari.nordmann@example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx2.example.org
Diagnostic-Code: smtp; 550 5.1.1 <kari.nordmann@example.org>: Recipient address
    rejected: User unknown in virtual mailbox table

--A1B2C3D4E5.1741079523/mx1.example.org
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers
Content-Transfer-Encoding: 8bit

Return-Path: <bounce+c123.3f9a1b2c4d@bounces.alumni.usn.no>
From: =?utf-8?q?Alumni_USN_=E2=80=93_HH?= <alumni@usn.no>
To: Kari Nordmann <kari.nordmann@example.org>
Subject: =?utf-8?q?Nyhetsbrev_fra_fakultetet?=
Message-ID: <c123.m42@alumni.usn.no>
List-Unsubscribe: <https://alumni.usn.no/u/abc>, <mailto:unsubscribe@alumni.usn.no>

--A1B2C3D4E5.1741079523/mx1.example.org--
"""

POSTFIX_DELAYED = b"""\
From: MAILER-DAEMON@mx1.example.org (Mail Delivery System)
Subject: Delayed Mail (still being retried)
To: bounce+c123.3f9a1b2c4d@bounces.alumni.usn.no
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="F00D.1741/mx1.example.org"

--F00D.1741/mx1.example.org
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx1.example.org.

####################################################################
# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #
####################################################################

--F00D.1741/mx1.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx1.example.org
Arrival-Date: Tue,  4 Mar 2025 10:12:02 +0100 (CET)

Final-Recipient: rfc822; ola@example.org
Original-Recipient: rfc822;ola@example.org
Action: delayed
Status: 4.2.2
Remote-MTA: dns; mx2.example.org
Diagnostic-Code: smtp; 452 4.2.2 <ola@example.org>: Mailbox full
Will-Retry-Until: Tue, 9 Mar 2025 10:12:02 +0100 (CET)

--F00D.1741/mx1.example.org
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Message-ID: <c123.m43@alumni.usn.no>
Subject: Nyhetsbrev

--F00D.1741/mx1.example.org--
"""

EXCHANGE = b"""\
From: postmaster@uniklinikk.example.no
To: bounce+t45.0a1b2c3d4e@bounces.alumni.usn.no
Date: Wed, 5 Mar 2025 08:01:10 +0000
Subject: Undeliverable: Bekreft e-postadressen din
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="_000_ndr_boundary_"
MIME-Version: 1.0
X-MS-Exchange-Message-Is-Ndr:
Auto-Submitted: auto-replied

--_000_ndr_boundary_
Content-Type: multipart/alternative; differences=Content-Type;
\tboundary="_001_alt_"

--_001_alt_
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Your message to per.hansen@uniklinikk.example.no couldn't be delivered.
per.hansen wasn't found at uniklinikk.example.no.

--_001_alt_
Content-Type: text/html; charset="us-ascii"

<html><body><b>Your message couldn't be delivered.</b></body></html>

--_001_alt_--

--_000_ndr_boundary_
Content-Type: message/delivery-status

Reporting-MTA: dns;AM6PR10MB1234.EURPRD10.PROD.OUTLOOK.COM
Received-From-MTA: dns;mx.alumni.usn.no
Arrival-Date: Wed, 5 Mar 2025 08:01:09 +0000

Original-Recipient: rfc822;per.hansen@uniklinikk.example.no
Final-Recipient: rfc822;per.hansen@uniklinikk.example.no
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup
X-Display-Name: Per Hansen

--_000_ndr_boundary_
Content-Type: message/rfc822

From: Alumni USN <alumni@usn.no>
To: Per Hansen <per.hansen@uniklinikk.example.no>
Subject: Bekreft e-postadressen din
Message-ID: <t45.confirm@alumni.usn.no>
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"

Klikk lenken for =C3=A5 bekrefte.

--_000_ndr_boundary_--
"""

# Status only in the Diagnostic-Code, Action present.
DIAGNOSTIC_ONLY = b"""\
From: MAILER-DAEMON@legacy.example.com
To: bounce+c7.1234567890@bounces.alumni.usn.no
Subject: Returned mail: see transcript for details
MIME-Version: 1.0
Content-Type: multipart/report; report-type="delivery-status"; boundary="xx42"

--xx42
Content-Type: text/plain

The original message was received at Wed, 5 Mar 2025 09:00:00 +0100

--xx42
Content-Type: message/delivery-status

Reporting-MTA: dns; legacy.example.com

Final-Recipient: RFC822; lise@legacy.example.com
Action: failed
Diagnostic-Code: smtp; 550 5.1.1 user unknown

--xx42--
"""

OUT_OF_OFFICE = b"""\
From: Kari Nordmann <kari.nordmann@example.org>
To: bounce+c123.3f9a1b2c4d@bounces.alumni.usn.no
Subject: Automatisk svar: Nyhetsbrev fra fakultetet
Auto-Submitted: auto-replied
X-Autoreply: yes
Precedence: auto_reply
In-Reply-To: <c123.m42@alumni.usn.no>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Jeg er p\xc3\xa5 ferie til 17. mars. Status 5.1.1 f\xc3\xa5r vente.
"""


def _bounce(recipient_block: str, encoding: str = "", kind: str = "message/delivery-status") -> bytes:
    """A minimal report around one recipient block, for the edge cases."""
    status = "Reporting-MTA: dns; mx.example.org\n\n" + recipient_block
    if encoding == "base64":
        import base64

        status = base64.encodebytes(status.encode()).decode()
    cte = f"Content-Transfer-Encoding: {encoding}\n" if encoding else ""
    return (
        'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        f"--b\nContent-Type: text/plain\n\nBounced.\n\n--b\nContent-Type: {kind}\n{cte}\n{status}\n--b--\n"
    ).encode()


# VERP --------------------------------------------------------------------------------------


def test_return_path_round_trip() -> None:
    address = return_path("c123", KEY, LOCAL, DOMAIN)
    assert address.startswith("bounce+c123.")
    assert address.endswith("@bounces.alumni.usn.no")
    assert delivery_of(address, KEY, LOCAL, DOMAIN) == "c123"
    assert delivery_of(f"<{address.upper()}>", KEY, LOCAL, DOMAIN) == "c123"  # case-folding relays
    assert delivery_of(return_path("t45", KEY, LOCAL, DOMAIN), KEY, LOCAL, DOMAIN) == "t45"


def test_forged_or_foreign_return_paths_are_refused() -> None:
    address = return_path("c123", KEY, LOCAL, DOMAIN)
    mailbox, _, domain = address.partition("@")
    flipped = mailbox[:-1] + ("0" if mailbox[-1] != "0" else "1")
    assert delivery_of(f"{flipped}@{domain}", KEY, LOCAL, DOMAIN) is None  # altered tag
    assert delivery_of(address.replace("c123", "c124"), KEY, LOCAL, DOMAIN) is None  # other delivery, same tag
    assert delivery_of(address, b"another-key-of-enough-length!!", LOCAL, DOMAIN) is None
    assert delivery_of(address, KEY, LOCAL, "bounces.example.org") is None
    assert delivery_of(address.replace("@", "@evil."), KEY, LOCAL, DOMAIN) is None
    assert delivery_of(address, KEY, "returns", DOMAIN) is None
    assert delivery_of("bounce+c123@bounces.alumni.usn.no", KEY, LOCAL, DOMAIN) is None  # missing tag
    assert delivery_of(f"{mailbox[:-2]}@{domain}", KEY, LOCAL, DOMAIN) is None  # shortened tag
    assert delivery_of("kari.nordmann@example.org", KEY, LOCAL, DOMAIN) is None
    assert delivery_of("", KEY, LOCAL, DOMAIN) is None


@pytest.mark.parametrize("delivery", ["", "C123", "c-1", "c1.2", "kari@example.org", "x" * 65])
def test_return_path_refuses_references_that_are_not_opaque(delivery: str) -> None:
    with pytest.raises(ValueError, match="delivery reference"):
        return_path(delivery, KEY, LOCAL, DOMAIN)


# DSN parsing -------------------------------------------------------------------------------


def test_postfix_hard_bounce() -> None:
    [recipient] = parse_dsn(POSTFIX_HARD)
    assert (recipient.action, recipient.status, recipient.final_recipient) == (
        "failed",
        "5.1.1",
        "kari.nordmann@example.org",
    )
    assert recipient.hard
    assert not recipient.soft
    assert recipient.diagnostic == (
        "smtp; 550 5.1.1 <kari.nordmann@example.org>: Recipient address rejected: User unknown in virtual mailbox table"
    )


def test_delayed_mailbox_full_is_soft() -> None:
    [recipient] = parse_dsn(POSTFIX_DELAYED)
    assert (recipient.action, recipient.status) == ("delayed", "4.2.2")
    assert recipient.soft
    assert not recipient.hard


def test_exchange_ndr() -> None:
    [recipient] = parse_dsn(EXCHANGE)
    assert recipient == DsnRecipient(
        action="failed",
        status="5.1.10",
        final_recipient="per.hansen@uniklinikk.example.no",
        diagnostic="smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
    )
    assert recipient.hard


def test_status_only_in_the_diagnostic_code() -> None:
    [recipient] = parse_dsn(DIAGNOSTIC_ONLY)
    assert (recipient.action, recipient.status, recipient.final_recipient) == (
        "failed",
        "5.1.1",
        "lise@legacy.example.com",
    )
    assert recipient.hard


FAILED_TO = "Final-Recipient: rfc822; a@b.no\nAction: failed\n"


@pytest.mark.parametrize(
    ("block", "action", "status"),
    [
        (FAILED_TO + "Diagnostic-Code: smtp; 550 No such user\n", "failed", "5.0.0"),
        ("Final-Recipient: rfc822; a@b.no\nDiagnostic-Code: smtp; 452 4.2.2 over quota\n", "delayed", "4.2.2"),
        ("Final-Recipient: rfc822; a@b.no\nAction: FAILED\nStatus: 5.7.1 (spam)\n", "failed", "5.7.1"),
        (FAILED_TO, "failed", "5.0.0"),
        ("Final-Recipient: rfc822; a@b.no\nAction: delivered\nStatus: 2.0.0\n", "delivered", "2.0.0"),
        # An IP address in the text is not a status code.
        (FAILED_TO + "Diagnostic-Code: X-Postfix; connect to 10.5.1.1: refused\n", "failed", "5.0.0"),
    ],
)
def test_missing_or_odd_fields(block: str, action: str, status: str) -> None:
    [recipient] = parse_dsn(_bounce(block))
    assert (recipient.action, recipient.status) == (action, status)


def test_base64_and_global_delivery_status() -> None:
    block = "Final-Recipient: rfc822; a@b.no\nAction: failed\nStatus: 5.2.1\n"
    assert [r.status for r in parse_dsn(_bounce(block, encoding="base64"))] == ["5.2.1"]
    assert [r.status for r in parse_dsn(_bounce(block, kind="message/global-delivery-status"))] == ["5.2.1"]


def test_several_recipients_and_a_long_diagnostic() -> None:
    blocks = (
        f"Final-Recipient: rfc822; a@b.no\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 {'x' * 500}\n"
        "\nFinal-Recipient: rfc822; c@d.no\nAction: delayed\nStatus: 4.4.1\n"
    )
    first, second = parse_dsn(_bounce(blocks))
    assert first.final_recipient == "a@b.no"
    assert len(first.diagnostic or "") == 300
    assert (second.final_recipient, second.soft, second.diagnostic) == ("c@d.no", True, None)


def test_out_of_office_is_not_a_bounce() -> None:
    assert parse_dsn(OUT_OF_OFFICE) == []
    assert original_message_id(OUT_OF_OFFICE) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe\x80" * 50,
        os.urandom(4096),
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\n\n--x\nContent-Type: message/deliv",
        b"Content-Type: multipart/report; boundary=x\n\n--x\nContent-Type: message/delivery-status\n\n\xff\xfe: \xff\n",
        b"Content-Type: multipart/mixed; boundary=a\n\n" + b"--a\nContent-Type: multipart/mixed; boundary=a\n\n" * 3000,
        b"Content-Type: multipart/report; boundary=x\n\n--x\nContent-Type: message/delivery-status\n"
        b"Content-Transfer-Encoding: base64\n\n!!!notbase64\n--x--\n",
    ],
)
def test_garbage_gives_nothing_and_never_raises(raw: bytes) -> None:
    assert parse_dsn(raw) == []
    assert original_message_id(raw) is None


def test_original_message_id() -> None:
    assert original_message_id(POSTFIX_HARD) == "<c123.m42@alumni.usn.no>"  # text/rfc822-headers
    assert original_message_id(EXCHANGE) == "<t45.confirm@alumni.usn.no>"  # message/rfc822
    assert original_message_id(DIAGNOSTIC_ONLY) is None


def test_build_dsn_is_understood() -> None:
    original = _newsletter("kari@example.org")
    raw = build_dsn("bounce+c1.abc@bounces.alumni.usn.no", original, status="5.2.2", diagnostic="smtp; 552 5.2.2 full")
    assert parse_dsn(raw) == [DsnRecipient("failed", "5.2.2", "kari@example.org", "smtp; 552 5.2.2 full")]
    assert original_message_id(raw) == original["Message-ID"]


# The bounce listener, in-process -----------------------------------------------------------


SERVER, SESSION = cast(SMTP, None), cast(Session, None)  # the handler uses neither


class Calls:
    def __init__(self, fail: bool = False) -> None:
        self.seen: list[tuple[str, list[DsnRecipient], str | None]] = []
        self.fail = fail

    async def __call__(self, delivery: str, recipients: list[DsnRecipient], message_id: str | None) -> None:
        self.seen.append((delivery, recipients, message_id))
        if self.fail:
            raise RuntimeError("database down for kari.nordmann@example.org")


async def test_handler_accepts_signed_addresses_and_logs_no_addresses(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="mailer.bounces")
    calls = Calls()
    handler = BounceHandler(KEY, LOCAL, DOMAIN, calls)
    envelope = Envelope()
    assert await handler.handle_RCPT(SERVER, SESSION, envelope, "kari.nordmann@example.org", []) == (
        "550 5.1.1 no such bounce address"
    )
    address = return_path("c123", KEY, LOCAL, DOMAIN)
    assert await handler.handle_RCPT(SERVER, SESSION, envelope, address, []) == "250 OK"
    envelope.original_content = POSTFIX_HARD
    assert await handler.handle_DATA(SERVER, SESSION, envelope) == "250 OK"
    [(delivery, [recipient], message_id)] = calls.seen
    assert (delivery, recipient.hard, message_id) == ("c123", True, "<c123.m42@alumni.usn.no>")
    calls.fail = True
    assert await handler.handle_DATA(SERVER, SESSION, envelope) == "451 4.3.0 try again later"
    assert "c123" in caplog.text
    assert "5.1.1" in caplog.text
    assert "@" not in caplog.text


async def test_handler_passes_auto_replies_on_as_no_recipients() -> None:
    calls = Calls()
    handler = BounceHandler(KEY, LOCAL, DOMAIN, calls)
    envelope = Envelope()
    await handler.handle_RCPT(SERVER, SESSION, envelope, return_path("c9", KEY, LOCAL, DOMAIN), [])
    envelope.original_content = OUT_OF_OFFICE
    assert await handler.handle_DATA(SERVER, SESSION, envelope) == "250 OK"
    assert calls.seen == [("c9", [], None)]


# Over real SMTP ----------------------------------------------------------------------------


def _newsletter(to: str, body: str = "Hei Kari,\n\nnytt fra fakultetet.\n") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Alumni USN <alumni@usn.no>"
    message["To"] = f"Kari Nordmann <{to}>"
    message["Subject"] = "Nyhetsbrev: Hva skjer på campus Bø?"
    message["Message-ID"] = make_msgid(domain="alumni.usn.no")
    message.set_content(body)
    return message


async def _send(sink: SmtpSink, message: EmailMessage, to: str, sender: str) -> None:
    await aiosmtplib.send(message, sender=sender, recipients=[to], hostname=sink.host, port=sink.port)


@pytest.mark.real
@pytest.mark.parametrize("fast", [False, True])
async def test_sink_records_deliveries_and_fails_on_request(fast: bool) -> None:
    sender = return_path("c1", KEY, LOCAL, DOMAIN)
    body = ".\n..to punktum\nHei Kari,\n.\n"  # dot-stuffed on the wire, as any line starting with "."
    with SmtpSink(fast=fast) as sink:
        await _send(sink, _newsletter("kari@example.org", body), "kari@example.org", sender)
        [got] = await sink.wait_for(1, timeout=5)
        assert (got.sender, got.recipients) == (sender, ("kari@example.org",))
        assert got.parsed["Subject"] == "Nyhetsbrev: Hva skjer på campus Bø?"
        content = got.parsed.get_body()
        assert isinstance(content, EmailMessage)
        assert content.get_content().replace("\r\n", "\n") == body
        assert got.parsed["Message-ID"].endswith("@alumni.usn.no>")

        sink.fail_next(1)
        with pytest.raises(aiosmtplib.SMTPResponseException) as failed:
            await _send(sink, _newsletter("ola@example.org"), "ola@example.org", sender)
        assert failed.value.code == 451

        sink.reject("per@example.org")
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await _send(sink, _newsletter("per@example.org"), "Per@example.org", sender)
        assert refused.value.recipients[0].code == 550

        await _send(sink, _newsletter("ola@example.org"), "ola@example.org", sender)
        assert sink.count() == 2
        assert sink.recipient_counts() == {"kari@example.org": 1, "ola@example.org": 1}


@pytest.mark.real
async def test_sink_goes_down_and_comes_back_on_the_same_port() -> None:
    message = _newsletter("kari@example.org")
    with SmtpSink(keep_parsed=False) as sink:
        async with aiosmtplib.SMTP(hostname=sink.host, port=sink.port, timeout=5) as open_connection:
            sink.stop()
            with pytest.raises(aiosmtplib.SMTPException):
                await open_connection.send_message(message)  # dropped, not left hanging
        with pytest.raises(aiosmtplib.SMTPConnectError):
            await _send(sink, message, "kari@example.org", "a@usn.no")
        sink.start()
        await _send(sink, message, "kari@example.org", "a@usn.no")
        assert await sink.wait_for(1, timeout=5) == []  # nothing kept, only counted
        assert sink.count() == 1


@pytest.mark.real
async def test_bounce_listener_over_smtp() -> None:
    calls = Calls()
    port = free_port()
    controller = Controller(
        BounceHandler(KEY, LOCAL, DOMAIN, calls), hostname="127.0.0.1", port=port, data_size_limit=MAX_BOUNCE_BYTES
    )
    controller.start()
    try:
        original = _newsletter("kari@example.org")
        await send_dsn("127.0.0.1", port, return_path("c123", KEY, LOCAL, DOMAIN), original)
        [(delivery, [recipient], message_id)] = calls.seen
        assert (delivery, recipient.status, recipient.hard) == ("c123", "5.1.1", True)
        assert message_id == original["Message-ID"]

        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await send_dsn("127.0.0.1", port, "bounce+c123.0000000000@bounces.alumni.usn.no", original)
        assert refused.value.recipients[0].code == 550

        calls.fail = True
        with pytest.raises(aiosmtplib.SMTPResponseException) as retry:
            await send_dsn("127.0.0.1", port, return_path("c124", KEY, LOCAL, DOMAIN), original)
        assert retry.value.code == 451

        huge = b"Subject: big\r\n\r\n" + (b"x" * 98 + b"\r\n") * (MAX_BOUNCE_BYTES // 100 + 1)
        with pytest.raises(aiosmtplib.SMTPResponseException) as too_big:
            await aiosmtplib.send(
                huge, sender="a@example.org", recipients=[return_path("c125", KEY, LOCAL, DOMAIN)], port=port
            )
        assert too_big.value.code == 552
        assert [seen[0] for seen in calls.seen] == ["c123", "c124"]  # neither the refused nor the huge one
    finally:
        controller.stop()


def test_eight_bit_dsn_fields_come_back_as_utf8() -> None:
    block = "Final-Recipient: utf-8; åse@bø.no\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 åse\n"
    for kind in ("message/global-delivery-status", "message/delivery-status"):
        [recipient] = parse_dsn(_bounce(block, kind=kind))
        assert (recipient.final_recipient, recipient.diagnostic) == ("åse@bø.no", "smtp; 550 5.1.1 åse")


def test_a_hostile_megabyte_is_parsed_quickly() -> None:
    """policy.default would take ~15 s on this; the listener must not stall on one message."""
    part = b"--a\nContent-Type: text/plain\nContent-Description: x\n\nz\n"
    raw = b"Content-Type: multipart/report; boundary=a\n\n" + part * (MAX_BOUNCE_BYTES // len(part))
    started = time.monotonic()
    assert parse_dsn(raw) == []
    assert time.monotonic() - started < 5
