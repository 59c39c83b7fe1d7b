"""iCalendar (RFC 5545) text rules shared by the service that writes entries (events) and
the one that completes them for their recipient (the mailer adds her ATTENDEE line).

Only what a fixed shape of VEVENT needs: TEXT escaping (§3.3.11), line folding at 75
octets (§3.1), and one ATTENDEE property (§3.8.4.1) per VEVENT.
"""

from __future__ import annotations

import re

_END_VEVENT = re.compile(r"^END:VEVENT\r?$", re.MULTILINE)


def escape(text: str) -> str:
    """TEXT value (§3.3.11): backslash, semicolon, comma and line breaks escaped; other
    control characters (which no TEXT may hold) dropped."""
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return "".join(c for c in text if c == "\t" or (ord(c) >= 0x20 and ord(c) != 0x7F))


def fold(line: str) -> str:
    """Lines of at most 75 octets (§3.1), never splitting a UTF-8 character; each
    continuation starts with a space."""
    parts: list[str] = []
    current, size, limit = "", 0, 75
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            parts.append(current)
            current, size, limit = "", 0, 74  # the leading space counts
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def _param_value(text: str) -> str:
    """A quoted parameter value (§3.2): no DQUOTE and no control characters in it."""
    return "".join(c for c in text if c != '"' and ord(c) >= 0x20 and ord(c) != 0x7F)


def attendee_line(address: str, name: str | None = None) -> str:
    """The recipient as the entry's one ATTENDEE: she registered herself, so her answer is
    known (PARTSTAT=ACCEPTED) and none is asked for (RSVP=FALSE: no reply to the organiser)."""
    cn = f';CN="{_param_value(name)}"' if name and _param_value(name) else ""
    return fold(f"ATTENDEE{cn};CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;RSVP=FALSE:mailto:{address}")


def with_attendee(calendar: str, address: str, name: str | None = None) -> str:
    """`calendar` with the ATTENDEE line added to each VEVENT (before its END line)."""
    line = attendee_line(address, name)
    return _END_VEVENT.sub(lambda m: f"{line}\r\n{m.group(0)}", calendar)
