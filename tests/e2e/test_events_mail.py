"""The mail-facing part of events on the real broker, databases, an SMTP server and Chromium:
the invitation campaign on publish, the registration page from its link, the confirmation
with an iCalendar entry that updates replace, offers answered from their page, the
cancellation to every registrant, and the .ics feed."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import asyncpg
import httpx
import icalendar
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.e2e.consent_helpers import started
from tests.e2e.events_helpers import COMMS, act, member_link, published_event
from tests.e2e.mailer_helpers import consent_fact, load, members, until_done
from tests.e2e.test_consent_browser import click_and_wait
from tests.smtp import SmtpSink
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish

pytestmark = pytest.mark.real


def _text(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def _calendar(mail: EmailMessage) -> tuple[str, icalendar.Calendar]:
    """The mail's text/calendar attachment: its method parameter and the parsed calendar."""
    [part] = [p for p in mail.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert part.get_filename() == "event.ics"
    return str(part.get_param("method")), icalendar.Calendar.from_ical(part.get_content())


def _vevent(cal: icalendar.Calendar) -> Any:
    [event] = cal.walk("VEVENT")
    return event


async def _mails_to(sink: SmtpSink, address: str, subject_prefix: str, n: int = 1) -> list[EmailMessage]:
    async def arrived() -> list[EmailMessage] | None:
        found = [m.parsed for m in sink.messages() if address in m.recipients
                 and str(m.parsed["Subject"]).startswith(subject_prefix)]  # fmt: skip
        return found if len(found) >= n else None

    found: list[EmailMessage] = await eventually(arrived, timeout=90, what=f"{subject_prefix} to {address}")
    return found


def _link(text: str, path: str) -> str:
    match = re.search(rf"https?://\S+{re.escape(path)}\?token=[\w.-]+", text)
    assert match, text
    return match.group(0)


async def test_invitation_registration_page_calendar_updates_offers_and_cancellation(
    stack: Stack,
    topic_prefix: str,
    events_service: ServiceProcess,
    events_conn: asyncpg.Connection,
    mailer_service: ServiceProcess,
    mailer_conn: asyncpg.Connection,
    membership_service: ServiceProcess,
    smtp_sink: SmtpSink,
    browser: webdriver.Chrome,
) -> None:
    # Events seals each mail with the member's key, from membership as every service does.
    events_service.env["ALUMNI_MEMBERSHIP_URL"] = membership_service.url
    events_service.requires.append(membership_service)
    # Reminders an hour before the start, looked for twice a second.
    events_service.env.update({"EVENTS_REMINDER_HOURS": "1", "EVENTS_REMINDER_SWEEP_SECONDS": "0.5"})
    await started(mailer_service)
    events = await started(events_service)

    # TNM: one with consent to event invitations, one to newsletters only, four with none;
    # HH: one with consent to events (outside the audience).
    tnm = members(6, "TNM", "tnm")
    invited, newsletter_only, b, c, e, _ = tnm
    e["data"]["language"] = "en"  # chosen in her profile: her mail is in English only; the others' in both
    hh = members(1, "HH", "hh")
    newsletter = consent_fact(newsletter_only["data"]["member_id"], 1, "given")
    await publish(stack.bootstrap, topic_prefix + "consent-given", [event_bytes(newsletter)])
    await load(stack, topic_prefix, mailer_conn, [*tnm, *hh], [invited, hh[0]], purpose="events", others=1)
    ids = {"invited": invited, "b": b, "c": c, "e": e}
    ids = {name: p["data"]["member_id"] for name, p in ids.items()}

    event_id = published_event(events, capacity=2, audience={"faculties": ["TNM"]})
    await until_done(mailer_conn, f"event-{event_id}")
    invitations = [m for m in smtp_sink.messages() if str(m.parsed["Subject"]).startswith("Invitasjon")]
    assert [m.recipients for m in invitations] == [("tnm0@example.no",)]  # exactly the consenting audience
    link = _link(_text(invitations[0].parsed), f"/events/{event_id}/register")

    # GET shows the event and a button, and registers nobody; only the POST (the click) does.
    await asyncio.to_thread(browser.get, link)
    assert "Alumnikveld" in browser.find_element(By.ID, "heading").text
    assert browser.find_element(By.ID, "register").text == "Meld meg på"
    assert await events_conn.fetchval("SELECT count(*) FROM registrations WHERE event_id = $1", event_id) == 0
    await asyncio.to_thread(click_and_wait, browser, "register")
    assert browser.find_element(By.ID, "heading").text == "Du er påmeldt"
    assert (
        await events_conn.fetchval(
            "SELECT status FROM registrations WHERE event_id = $1 AND member_id = $2", event_id, ids["invited"]
        )
        == "registered"
    )
    # The same link again: a clear page, no second registration.
    await asyncio.to_thread(browser.get, link)
    assert browser.find_element(By.ID, "heading").text == "Du er allerede påmeldt"

    # The confirmation carries an RFC 5545 entry (parsed by the icalendar library).
    [confirmation] = await _mails_to(smtp_sink, "tnm0@example.no", "Påmeldt:")
    method, cal = _calendar(confirmation)
    first = _vevent(cal)
    assert method == "REQUEST"
    assert str(cal["METHOD"]) == "REQUEST"
    registration_id = await events_conn.fetchval(
        "SELECT registration_id::text FROM registrations WHERE member_id = $1", ids["invited"]
    )
    assert str(first["UID"]) == f"registration-{registration_id}@alumni.usn.no"
    assert str(first["SUMMARY"]) == "Alumnikveld på Campus Kongsberg – æøå"
    assert str(first["STATUS"]) == "CONFIRMED"
    # RFC 5546: a REQUEST names its organiser and attendee (her address, added by the mailer).
    assert str(first["ORGANIZER"]) == "mailto:alumni@usn.no"
    assert str(first["ATTENDEE"]) == "mailto:tnm0@example.no"
    assert first["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"
    # ... and her ticket: the check-in code, its QR (SVG) and her ticket page showing the same code.
    code = re.search(r"Innsjekkingskode: (\S+)", _text(confirmation))
    assert code
    [qr] = [p for p in confirmation.iter_attachments() if p.get_filename() == "ticket.svg"]
    assert qr.get_content_type() == "image/svg+xml"
    assert b"<svg" in qr.get_content()
    ticket_page = httpx.get(_link(_text(confirmation), f"/events/{event_id}/ticket"))
    assert ticket_page.status_code == 200
    assert code.group(1) in ticket_page.text

    # An update replaces it: same UID, higher SEQUENCE, the new time.
    new_start: datetime = first.decoded("DTSTART") + timedelta(hours=1)
    change = {"starts_at": new_start.isoformat(), "ends_at": (new_start + timedelta(hours=2)).isoformat()}
    answer = httpx.patch(f"{events.url}/events/{event_id}", json=change, headers=COMMS)
    assert answer.status_code == 200, answer.text
    [update] = await _mails_to(smtp_sink, "tnm0@example.no", "Endret:")
    # Her language unknown, the update is in both; the English half's links open the pages in English.
    bokmal_half, english_half = re.split(r"\r?\n---\r?\n", _text(update), maxsplit=1)
    assert not re.search(r"lang=en", bokmal_half)
    in_english = re.search(rf"https?://\S+/events/{event_id}/register\?token=[\w.-]+&lang=en", english_half)
    assert in_english, english_half
    page = httpx.get(in_english.group(0))
    assert page.status_code == 409  # she is registered: the page says so, in English
    assert '<html lang="en">' in page.text
    assert "You are already registered" in page.text
    method, cal = _calendar(update)
    updated = _vevent(cal)
    assert method == "REQUEST"
    assert str(updated["UID"]) == str(first["UID"])
    assert int(updated["SEQUENCE"]) > int(first["SEQUENCE"])
    assert updated.decoded("DTSTART") == new_start

    # The feed lists the event under its own UID with the same version.
    feed = httpx.get(f"{events.url}/events/calendar.ics")
    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith("text/calendar")
    [listed] = [v for v in icalendar.Calendar.from_ical(feed.content).walk("VEVENT")
                if str(v["UID"]) == f"event-{event_id}@alumni.usn.no"]  # fmt: skip
    assert int(listed["SEQUENCE"]) == int(updated["SEQUENCE"])

    # b takes the second seat; c and e wait. b cancels: c is offered the seat by mail, and
    # answers on the offer's page (GET shows accept/decline, POST accepts).
    for who in ("b", "c", "e"):
        assert act(events, event_id, ids[who]).status_code == 201
    [b_confirmed] = await _mails_to(smtp_sink, "tnm2@example.no", "Påmeldt:")
    # b cancels from the link in her confirmation: GET shows her seat and a button and cancels
    # nothing; only the click (the POST) does, and the same link then says she has left.
    cancel_link = _link(_text(b_confirmed), f"/events/{event_id}/withdraw")
    await asyncio.to_thread(browser.get, cancel_link)
    assert browser.find_element(By.ID, "cancel").text == "Meld meg av"
    assert await events_conn.fetchval("SELECT status FROM registrations WHERE member_id = $1", ids["b"]) == "registered"
    await asyncio.to_thread(click_and_wait, browser, "cancel")
    assert browser.find_element(By.ID, "heading").text == "Du er meldt av"
    assert await events_conn.fetchval("SELECT status FROM registrations WHERE member_id = $1", ids["b"]) == "cancelled"
    await asyncio.to_thread(browser.get, cancel_link)
    assert browser.find_element(By.ID, "heading").text == "Du er allerede meldt av"
    # b is told, and her own entry is removed (same UID, higher SEQUENCE).
    [b_left] = await _mails_to(smtp_sink, "tnm2@example.no", "Avmeldt:")
    method, cal = _calendar(b_left)
    b_entry, b_removed = _vevent(_calendar(b_confirmed)[1]), _vevent(cal)
    assert method == "CANCEL"
    assert str(b_removed["ATTENDEE"]) == "mailto:tnm2@example.no"
    assert str(b_removed["UID"]) == str(b_entry["UID"]) != str(first["UID"])
    assert int(b_removed["SEQUENCE"]) > int(b_entry["SEQUENCE"])
    [offer] = await _mails_to(smtp_sink, "tnm3@example.no", "Ledig plass")
    offer_link = _link(_text(offer), f"/events/{event_id}/offer")
    assert "holdes for deg i 48 timer" in _text(offer)  # the hold time (the event's offer_hours)
    shown = httpx.get(offer_link)
    assert shown.status_code == 200
    assert 'value="accept"' in shown.text
    assert 'value="decline"' in shown.text
    assert await events_conn.fetchval("SELECT status FROM registrations WHERE member_id = $1", ids["c"]) == "offered"
    token = offer_link.split("token=")[1]
    no_choice = httpx.post(f"{events.url}/events/{event_id}/offer", data={"token": token})
    assert no_choice.status_code == 422  # never a decline by default
    assert await events_conn.fetchval("SELECT status FROM registrations WHERE member_id = $1", ids["c"]) == "offered"
    accepted = httpx.post(f"{events.url}/events/{event_id}/offer", data={"token": token, "choice": "accept"})
    assert accepted.status_code == 200, accepted.text
    assert "Du er påmeldt" in accepted.text
    await _mails_to(smtp_sink, "tnm3@example.no", "Påmeldt:")

    # e, still waiting, would leave the list from the same page (her place shown, nothing done on GET).
    waiting = httpx.get(f"{events.url}/events/{event_id}/withdraw", params={"token": member_link(ids["e"])})
    assert waiting.status_code == 200
    assert "nummer 1" in waiting.text
    assert 'value="leave"' in waiting.text
    stranger = httpx.get(f"{events.url}/events/{event_id}/withdraw", params={"token": member_link(str(uuid.uuid4()))})
    assert stranger.status_code == 404  # nothing of hers to cancel
    assert "Du er ikke påmeldt" in stranger.text

    # Cancelling the event tells every registrant (seats and the waiting list); those with a
    # seat get their entry cancelled (same UID, higher SEQUENCE). b, who left, is not told.
    assert httpx.post(f"{events.url}/events/{event_id}/cancel", headers=COMMS).status_code == 200
    told = {}
    for address in ("tnm0@example.no", "tnm3@example.no"):
        [told[address]] = await _mails_to(smtp_sink, address, "Avlyst:")
    [told["tnm4@example.no"]] = await _mails_to(smtp_sink, "tnm4@example.no", "Cancelled:")
    english = _text(told["tnm4@example.no"])
    assert "is cancelled" in english
    assert "avlyst" not in english.lower()
    assert told["tnm4@example.no"]["Content-Language"] == "en"
    both = _text(told["tnm0@example.no"])  # her language unknown: bokmål first, English below
    assert both.index("er avlyst") < both.index("is cancelled")
    method, cal = _calendar(told["tnm0@example.no"])
    cancelled = _vevent(cal)
    assert method == "CANCEL"
    assert str(cancelled["UID"]) == str(first["UID"])
    assert int(cancelled["SEQUENCE"]) > int(updated["SEQUENCE"])
    assert str(cancelled["STATUS"]) == "CANCELLED"
    assert not list(told["tnm4@example.no"].iter_attachments())  # waiting: no calendar entry to remove
    assert not [m for m in smtp_sink.messages() if "tnm2@example.no" in m.recipients
                and str(m.parsed["Subject"]).startswith("Avlyst")]  # fmt: skip

    # The registration page of a cancelled event says so; a forged link is refused.
    page = httpx.get(link)
    assert page.status_code == 410
    assert "avlyst" in page.text
    forged = httpx.get(f"{events.url}/events/{event_id}/register", params={"token": member_link(ids["e"]) + "x"})
    assert forged.status_code == 403
    assert "Lenken virker ikke" in forged.text
    expired = httpx.get(link.split("?")[0], params={"token": member_link(ids["e"], ttl=-60)})
    assert expired.status_code == 410
    assert "Lenken er for gammel" in expired.text

    # Past the deadline the page says so, and its POST registers nobody.
    now = datetime.now(UTC)
    closing = published_event(events, hours_ahead=3, registration_deadline=(now + timedelta(seconds=2)).isoformat())
    closing_page = f"{events.url}/events/{closing}/register"
    token = member_link(ids["e"])

    async def closed() -> bool:
        return httpx.get(closing_page, params={"token": token}).status_code == 410

    await eventually(closed, timeout=30, what="the deadline to pass")
    assert "Påmeldingsfristen er ute" in httpx.get(closing_page, params={"token": token}).text
    refused = httpx.post(closing_page, data={"token": token})
    assert refused.status_code == 410
    assert "Påmeldingsfristen er ute" in refused.text
    assert await events_conn.fetchval("SELECT count(*) FROM registrations WHERE event_id = $1", closing) == 0

    # The reminder: once the event is within EVENTS_REMINDER_HOURS of its start, those with a seat get one.
    soon = published_event(events, hours_ahead=3, registration_deadline=None)
    assert act(events, soon, ids["invited"]).status_code == 201
    starts = datetime.now(UTC) + timedelta(minutes=40)
    moved = {"starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=2)).isoformat()}
    assert httpx.patch(f"{events.url}/events/{soon}", json=moved, headers=COMMS).status_code == 200
    [reminder] = await _mails_to(smtp_sink, "tnm0@example.no", "Påminnelse:")
    assert _link(_text(reminder), f"/events/{soon}/register")
