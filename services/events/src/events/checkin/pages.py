"""The check-in's pages: her ticket (QR and code, from her signed link) and the staff
door page (a phone in the doorway). Rendered with the kit's `Pages`."""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import HTMLResponse, Response

from alumni_kit.http import SECURITY_HEADERS
from alumni_kit.pages import Pages
from events.checkin.codes import Ticket
from events.repository import Event
from usn_schemas.vocabulary import Language

ASSETS = Path(__file__).parent / "assets"

WORDS = {
    "nb": {
        "site": "USN Alumni",
        "ticket": "Billetten din",
        "ticket_intro": "Vis QR-koden i døra. Virker ikke skanneren, kan koden under limes inn.",
        "code": "Innsjekkingskode",
        "starts": "Starter",
        "no_seat": "Du har ingen plass på dette arrangementet",
        "waiting": "Du står på ventelista; koden kommer når du får plass.",
        "offered": "Du har fått tilbud om plass: svar på tilbudet, så kommer koden.",
        "left": "Påmeldingen er avmeldt, så koden gjelder ikke lenger.",
        "not_registered": "Du er ikke påmeldt dette arrangementet.",
        "no_event": "Fant ikke arrangementet",
        "no_event_text": "Arrangementet finnes ikke eller er ikke publisert.",
        "bad_link": "Lenken er ugyldig",
        "bad_link_text": "Lenken er endret eller ikke fra oss. Bruk lenken i e-posten.",
        "expired_link": "Lenken er utløpt",
        "expired_link_text": "Be om en ny lenke.",
        "door": "Innsjekking",
        "door_token": "Personaltoken",
        "door_code": "Kode (skann, lim inn eller skriv)",
        "door_submit": "Sjekk inn",
        "door_scan": "Skann med kamera",
        "ok": "Sjekket inn",
        "again": "Allerede sjekket inn",
        "again_at": "først brukt",
        "refused": "Avvist",
        "offline": "Frakoblet: sjekket mot signatur og sperreliste",
    },
    "en": {
        "site": "USN Alumni",
        "ticket": "Your ticket",
        "ticket_intro": "Show the QR code at the door. If the scanner fails, the code below can be pasted.",
        "code": "Check-in code",
        "starts": "Starts",
        "no_seat": "You have no seat at this event",
        "waiting": "You are on the waiting list; the code comes when you get a seat.",
        "offered": "You have been offered a seat: answer the offer and the code follows.",
        "left": "The registration was cancelled, so the code is no longer valid.",
        "not_registered": "You are not registered for this event.",
        "no_event": "No such event",
        "no_event_text": "The event does not exist or is not published.",
        "bad_link": "Invalid link",
        "bad_link_text": "The link was altered or is not ours. Use the link in the e-mail.",
        "expired_link": "The link has expired",
        "expired_link_text": "Ask for a new link.",
        "door": "Check-in",
        "door_token": "Staff token",
        "door_code": "Code (scan, paste or type)",
        "door_submit": "Check in",
        "door_scan": "Scan with camera",
        "ok": "Checked in",
        "again": "Already checked in",
        "again_at": "first used",
        "refused": "Refused",
        "offline": "Offline: checked against the signature and the revocation list",
    },
}

PAGES = Pages(Path(__file__).parent / "templates", WORDS)

# The door page runs its own script (served from this service) and calls this service's API;
# the camera is for this page only. Everything else stays as strict as every other page.
DOOR_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; connect-src 'self'; "
    "style-src 'unsafe-inline'; media-src 'self' blob:; form-action 'self'",
    "Permissions-Policy": "camera=(self)",
}


def ticket_page(lang: Language, event: Event, ticket: Ticket) -> HTMLResponse:
    starts = event.starts_at.isoformat(timespec="minutes")
    return PAGES.page("ticket.html", lang, title=event.definition.title, starts=starts, ticket=ticket)


def message(lang: Language, heading: str, line: str, status: int) -> HTMLResponse:
    return PAGES.message(lang, WORDS[lang][heading], [WORDS[lang][line]], status)


def door_page(lang: Language, event: Event) -> HTMLResponse:
    page = PAGES.page("door.html", lang, event_id=event.event_id, title=event.definition.title)
    page.headers.update(DOOR_HEADERS)
    return page


def door_script() -> Response:
    body = (ASSETS / "checkin.js").read_bytes()
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)
