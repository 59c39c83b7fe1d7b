"""Her ticket in the confirmation: the check-in code (events.checkin.codes) as text, its QR
code as an SVG attachment, and the link to her ticket page (`/events/{id}/ticket`), which
shows the same code for as long as she holds the seat."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from events.checkin.codes import Keyring, ticket
from events.web.links import Links, in_english
from usn_schemas.mail import Attachment


@dataclass(frozen=True)
class TicketParts:
    lines: list[str]  # for the confirmation's text
    url: str  # her ticket page (the mail's button)
    qr: Attachment


def ticket_parts(
    keyring: Keyring, links: Links, event_id: str, starts_at: datetime, member_id: str, registration_id: str,
    now: datetime,
) -> TicketParts:  # fmt: skip
    t = ticket(keyring, event_id, registration_id)
    url = links.ticket(event_id, member_id, starts_at, now)
    lines = [
        f"Billetten din (QR-koden til innsjekkingen): {url}\nInnsjekkingskode: {t.code}",
        f"Your ticket (the QR code for check-in): {in_english(url)}\nCheck-in code: {t.code}",
    ]
    return TicketParts(lines, url, Attachment(filename="ticket.svg", content_type="image/svg+xml", content=t.qr_svg))
