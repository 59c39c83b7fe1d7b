"""iCalendar (RFC 5545) written by hand: a dozen properties of one kind of entry.

Why not a library at run time: the service writes one fixed shape (a VEVENT with UTC
times and text properties), which needs only two rules: text escaping (§3.3.11) and line
folding at 75 octets (§3.1), in alumni_kit.ical (the mailer adds her ATTENDEE line with
them: only the mailer knows her address); a dependency for that would be more code to
trust than this. The tests read every entry back with the `icalendar`
library, so a slip here shows there.

Each entry replaces the earlier one in her calendar: the UID is stable (one per
registration in mails, one per event in the feed) and SEQUENCE is the event's version
(advanced by every change of its definition or status, migrations/0002_mail.sql).
METHOD REQUEST adds or updates it, CANCEL removes it (RFC 5546).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from alumni_kit.ical import escape, fold

PRODID = "-//USN Alumni//events//NO"
UID_DOMAIN = "alumni.usn.no"
Method = Literal["REQUEST", "CANCEL", "PUBLISH"]


@dataclass(frozen=True)
class Entry:
    uid: str
    sequence: int
    starts_at: datetime
    ends_at: datetime
    summary: str
    description: str = ""
    location: str | None = None
    url: str | None = None
    cancelled: bool = False


def registration_uid(registration_id: str) -> str:
    return f"registration-{registration_id}@{UID_DOMAIN}"


def event_uid(event_id: str) -> str:
    return f"event-{event_id}@{UID_DOMAIN}"


def calendar(entries: Iterable[Entry], method: Method, organizer: str, now: datetime) -> str:
    """A VCALENDAR of `entries`, CRLF line ends, folded."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN", f"METHOD:{method}"]
    for e in entries:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{e.uid}",
            f"DTSTAMP:{_utc(now)}",
            f"SEQUENCE:{e.sequence}",
            f"DTSTART:{_utc(e.starts_at)}",
            f"DTEND:{_utc(e.ends_at)}",
            f"SUMMARY:{escape(e.summary)}",
            f"ORGANIZER;CN=USN Alumni:mailto:{organizer}",
            f"STATUS:{'CANCELLED' if e.cancelled else 'CONFIRMED'}",
        ]
        if e.description:
            lines.append(f"DESCRIPTION:{escape(e.description)}")
        if e.location:
            lines.append(f"LOCATION:{escape(e.location)}")
        if e.url:
            lines.append(f"URL:{e.url}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
