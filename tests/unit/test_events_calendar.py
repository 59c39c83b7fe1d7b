"""The events service's iCalendar entries (written by hand, calendar/ics.py) read back with a
real iCalendar library, and its invitation campaign body checked by the mailer's renderer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default

import icalendar

from events.calendar import ics
from events.mail import requests, texts
from mailer import compose, delivery
from usn_schemas.events import EventDefinition

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
AWKWARD = "Jul, nyttår; og «{{ given_name }}» {% if x %} – æøå \\ slutt"


def _entry(**fields: object) -> ics.Entry:
    values: dict[str, object] = {
        "uid": ics.registration_uid("9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"),
        "sequence": 3,
        "starts_at": NOW + timedelta(days=8),
        "ends_at": NOW + timedelta(days=8, hours=2),
        "summary": AWKWARD,
        "description": "Linje én\nLinje to, med komma; og semikolon\r\n" + "ø" * 200,
        "location": "Hasbergs vei 36, 3616 Kongsberg",
        **fields,
    }
    return ics.Entry(**values)  # type: ignore[arg-type]


def test_an_entry_parses_with_its_text_times_uid_and_sequence_intact() -> None:
    text = ics.calendar([_entry()], "REQUEST", "alumni@usn.no", NOW)
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))  # folded (RFC 5545 §3.1)
    assert text.endswith("END:VCALENDAR\r\n")
    cal = icalendar.Calendar.from_ical(text)
    assert str(cal["METHOD"]) == "REQUEST"
    [event] = cal.walk("VEVENT")
    assert str(event["UID"]) == "registration-9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d@alumni.usn.no"
    assert int(event["SEQUENCE"]) == 3
    assert str(event["SUMMARY"]) == AWKWARD
    assert str(event["DESCRIPTION"]) == "Linje én\nLinje to, med komma; og semikolon\n" + "ø" * 200
    assert str(event["LOCATION"]) == "Hasbergs vei 36, 3616 Kongsberg"
    assert event.decoded("DTSTART") == NOW + timedelta(days=8)
    assert event.decoded("DTEND") == NOW + timedelta(days=8, hours=2)
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["ORGANIZER"]) == "mailto:alumni@usn.no"


def test_a_cancellation_keeps_the_uid_and_says_cancelled() -> None:
    cal = icalendar.Calendar.from_ical(ics.calendar([_entry(sequence=4, cancelled=True)], "CANCEL", "a@usn.no", NOW))
    [event] = cal.walk("VEVENT")
    assert str(cal["METHOD"]) == "CANCEL"
    assert (str(event["STATUS"]), int(event["SEQUENCE"])) == ("CANCELLED", 4)


def test_control_characters_never_reach_a_line() -> None:
    text = ics.calendar([_entry(summary="a\x00b\x1bc\x7fd")], "PUBLISH", "a@usn.no", NOW)
    [event] = icalendar.Calendar.from_ical(text).walk("VEVENT")
    assert str(event["SUMMARY"]) == "abcd"


def test_the_invitation_body_shows_staff_text_as_itself_and_her_link() -> None:
    """The campaign body is a template at the mailer: braces in a title must come out as braces."""
    definition = EventDefinition.model_validate(
        {
            "title": AWKWARD,
            "description": "Program: {% for x in y %} *Markdown* stays {{ here }}",
            "organiser": "TNM",
            "kind": "social",
            "address": "Hasbergs vei 36",
            "starts_at": (NOW + timedelta(days=8)).isoformat(),
            "ends_at": (NOW + timedelta(days=8, hours=2)).isoformat(),
            "capacity": 10,
        }
    )
    subject, body = texts.invitation(definition)
    campaign = compose.Campaign(
        "event-x", "TNM", subject, body, "nb", False, "https://alumni.usn.no/r?token={token}", 9
    )
    parts = compose.check(campaign, Address("USN Alumni", addr_spec="alumni@usn.no"), 256 * 1024)
    links = compose.Links("https://u.invalid/unsub", "u@usn.no", lambda u: u, None, "https://alumni.usn.no/r?token=T")
    raw = compose.Prepared(parts).render(compose.SYNTHETIC_RECIPIENT, links, "<m@usn.no>")
    mail = message_from_bytes(raw, policy=default)
    assert isinstance(mail, EmailMessage)
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None
    assert html is not None
    plain, page = text.get_content(), html.get_content()
    assert f"<strong>{AWKWARD}</strong>" in page  # staff's title shown as itself: no template ran in it
    assert "{% for x in y %} <em>Markdown</em> stays {{ here }}" in page  # the description is Markdown
    assert plain.count("https://alumni.usn.no/r?token=T") == 2  # her own link, in both languages
    assert page.count('href="https://alumni.usn.no/r?token=T"') == 1  # not a tracked redirect
    assert page.count('href="https://alumni.usn.no/r?token=T&amp;lang=en"') == 1  # the English page


def test_the_mailer_adds_her_as_the_attendee_of_her_entry() -> None:
    """RFC 5546: a REQUEST (and a CANCEL) names ORGANIZER and ATTENDEE. Events writes the
    entry without her address; the mailer, which knows it, adds her before sending."""
    entry = requests.calendar_attachment(ics.calendar([_entry()], "REQUEST", "alumni@usn.no", NOW), "REQUEST")
    mail = {
        "to_address": "kari.nordmann-med-et-langt-navn@example.no",
        "to_name": 'Kari "K" Nordmann',
        "subject": "Påmeldt",
        "body_text": "Du er påmeldt.",
        "attachments": [entry.model_dump()],
    }
    msg = compose.build_transactional(mail, Address("USN Alumni", addr_spec="alumni@usn.no"), "<m@usn.no>")
    [part] = [p for p in msg.iter_attachments() if p.get_content_type() == "text/calendar"]
    text = part.get_content()
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))  # still folded
    [event] = icalendar.Calendar.from_ical(text).walk("VEVENT")
    attendee = event["ATTENDEE"]
    assert str(attendee) == "mailto:kari.nordmann-med-et-langt-navn@example.no"
    assert attendee.params["CN"] == "Kari K Nordmann"  # a DQUOTE cannot be in a parameter value
    assert (attendee.params["PARTSTAT"], attendee.params["RSVP"]) == ("ACCEPTED", "FALSE")
    assert str(event["ORGANIZER"]) == "mailto:alumni@usn.no"
    # A calendar the requester did not ask to complete is sent as it came.
    plain = {**entry.model_dump(), "add_recipient_as_attendee": False}
    msg = compose.build_transactional({**mail, "attachments": [plain]}, Address("A", addr_spec="a@usn.no"), "<n@x>")
    [part] = [p for p in msg.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert "ATTENDEE" not in part.get_content()


def test_a_mail_is_sent_in_her_language_when_the_mailer_knows_it_else_in_both() -> None:
    definition = {"title": "Kveld", "organiser": "TNM", "kind": "social", "address": "Hasbergs vei 36",
                  "starts_at": NOW.isoformat(), "ends_at": (NOW + timedelta(hours=2)).isoformat(),
                  "capacity": 10}  # fmt: skip
    words = texts.withdrawal(EventDefinition.model_validate(definition))
    mail = {"subject": words.subject, "body_text": words.body, "language": "nb",
            "translations": {k: v.model_dump() for k, v in words.translations().items()}}  # fmt: skip
    assert delivery.in_language(mail, None) == mail  # not known: both, bokmål first
    assert words.body.index("Du er meldt av") < words.body.index("You are no longer registered")
    english = delivery.in_language(mail, "en")
    assert english["language"] == "en"
    assert english["subject"].startswith("Registration cancelled:")
    assert "meldt av" not in english["body_text"]
    assert english["body_text"].endswith("Best regards, USN Alumni")
    bokmal = delivery.in_language(mail, "nb")
    assert "You are" not in bokmal["body_text"]
    assert delivery.in_language({"subject": "s", "body_text": "b"}, "en")["subject"] == "s"  # no translations


def test_the_english_mail_links_and_button_open_her_pages_in_english() -> None:
    definition = {"title": "Kveld", "organiser": "TNM", "kind": "social", "address": "Hasbergs vei 36",
                  "starts_at": NOW.isoformat(), "ends_at": (NOW + timedelta(hours=2)).isoformat(),
                  "capacity": 10}  # fmt: skip
    page, cancel = (
        "https://alumni.usn.no/events/e1/register?token=p.q",
        "https://alumni.usn.no/events/e1/withdraw?token=r",
    )
    ticket = ("Billett: https://alumni.usn.no/t?token=a", "Ticket: https://alumni.usn.no/t?token=a&lang=en")
    words = texts.confirmation(EventDefinition.model_validate(definition), page, ticket, cancel)
    button = "https://alumni.usn.no/events/e1/ticket?token=t"
    translations = words.translations(button)
    assert f"{page}&lang=en" in words.en_body
    assert f"{cancel}&lang=en" in words.en_body
    assert "lang=en" not in words.nb_body
    assert (translations["nb"].action_url, translations["en"].action_url) == (button, f"{button}&lang=en")
    mail = {"subject": words.subject, "body_text": words.body, "action_url": button, "language": "nb",
            "translations": {k: v.model_dump() for k, v in translations.items()}}  # fmt: skip
    assert delivery.in_language(mail, "en")["action_url"] == f"{button}&lang=en"
    assert delivery.in_language(mail, "nb")["action_url"] == button
    assert delivery.in_language(mail, None)["action_url"] == button  # both languages: the bokmål page
    older = {**mail, "translations": {k: {**v.model_dump(), "action_url": None} for k, v in translations.items()}}
    assert delivery.in_language(older, "en")["action_url"] == button  # a requester without it: the mail's
