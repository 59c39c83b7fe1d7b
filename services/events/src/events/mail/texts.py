"""The words of the events mails and pages, and when and where an event is, in Oslo time.

A mail to a member is written in bokmål and in English (`Words`): the mailer, which keeps
her language from membership, sends the one she chose, and both in one mail (bokmål
first, English below) to a member whose language it does not know. The organiser's
turnout alert goes to a role address, so always in both."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from events.web.links import in_english
from usn_schemas.events import EventDefinition
from usn_schemas.mail import Translation
from usn_schemas.vocabulary import Language

OSLO = ZoneInfo("Europe/Oslo")
_MONTHS_NB = ["januar", "februar", "mars", "april", "mai", "juni", "juli", "august", "september", "oktober",
              "november", "desember"]  # fmt: skip


def when_nb(at: datetime) -> str:
    local = at.astimezone(OSLO)
    return f"{local.day}. {_MONTHS_NB[local.month - 1]} {local.year} kl. {local:%H:%M}"


def when_en(at: datetime) -> str:
    local = at.astimezone(OSLO)
    return f"{local.day} {local:%B %Y}, {local:%H:%M} (Oslo time)"


def where(d: EventDefinition) -> str:
    parts = [p for p in (d.address, d.campus) if p]
    return ", ".join(parts) or (d.online_url or "")


def location(d: EventDefinition) -> str | None:
    """The calendar's LOCATION: the address (and campus), or the online link."""
    return where(d) or None


def _facts(d: EventDefinition) -> tuple[str, str]:
    nb = f"Tid: {when_nb(d.starts_at)}\nSted: {where(d)}"
    en = f"When: {when_en(d.starts_at)}\nWhere: {where(d)}"
    if d.online_url:
        nb, en = f"{nb}\nNett: {d.online_url}", f"{en}\nOnline: {d.online_url}"
    return nb, en


SIGNATURE: dict[Language, str] = {"nb": "Hilsen USN Alumni", "en": "Best regards, USN Alumni"}


@dataclass(frozen=True)
class Words:
    """One mail in bokmål and in English: the mailer sends the one in her language when it
    knows it (`translations`), else both in one mail, bokmål first (`subject`, `body`)."""

    nb_subject: str
    nb_body: str
    en_subject: str
    en_body: str
    nb_label: str | None = None  # the main link's button
    en_label: str | None = None

    @property
    def subject(self) -> str:
        return self.nb_subject

    @property
    def body(self) -> str:
        return f"{self.nb_body}\n\n---\n\n{self.en_body}\n\n{SIGNATURE['nb']}"

    @property
    def label(self) -> str | None:
        return f"{self.nb_label} / {self.en_label}" if self.nb_label and self.en_label else None

    def translations(self, action_url: str | None = None) -> dict[Language, Translation]:
        """Each language's mail; the English one's button opens her page in English."""
        en_url = None if action_url is None else in_english(action_url)
        return {
            "nb": Translation(subject=self.nb_subject[:200], body_text=f"{self.nb_body}\n\n{SIGNATURE['nb']}",
                              action_label=self.nb_label, action_url=action_url),
            "en": Translation(subject=self.en_subject[:200], body_text=f"{self.en_body}\n\n{SIGNATURE['en']}",
                              action_label=self.en_label, action_url=en_url),
        }  # fmt: skip


def _cancel_lines(cancel_url: str, status: str = "registered") -> tuple[str, str]:
    """Her link to cancel (a seat) or leave the waiting list (a place or an offer)."""
    if status == "registered":
        return (
            f"\n\nKan du ikke komme? Meld deg av her: {cancel_url}",
            f"\n\nCannot come? Cancel here: {in_english(cancel_url)}",
        )
    return (
        f"\n\nVil du ikke stå på ventelisten lenger? Gå av den her: {cancel_url}",
        f"\n\nNo longer want to wait for a seat? Leave the waiting list here: {in_english(cancel_url)}",
    )


def confirmation(d: EventDefinition, page_url: str, ticket: tuple[str, str], cancel_url: str) -> Words:
    """`ticket`: her ticket's lines, in bokmål and in English."""
    nb, en = _facts(d)
    cancel_nb, cancel_en = _cancel_lines(cancel_url)
    return Words(
        f"Påmeldt: {d.title}",
        f"Du er påmeldt «{d.title}».\n\n{nb}\n\nKalenderoppføringen ligger ved.\n\n{ticket[0]}\n\n"
        f"Arrangementet og påmeldingen din: {page_url}{cancel_nb}",
        f"Registered: {d.title}",
        f"You are registered for “{d.title}”.\n\n{en}\n\nThe calendar entry is attached.\n\n{ticket[1]}\n\n"
        f"The event and your registration: {in_english(page_url)}{cancel_en}",
        "Billett",
        "Ticket",
    )


def _hours(hold: timedelta) -> str:
    hours = hold.total_seconds() / 3600
    return f"{hours:.0f}" if hours >= 1.5 else f"{hours:.1f}".replace(".0", "")


def offer(d: EventDefinition, until: datetime, hold: timedelta, url: str) -> Words:
    """The seat held for her `hold` (the event's offer_hours, or less near the deadline) until `until`."""
    nb, en = _facts(d)
    h = _hours(hold)
    return Words(
        f"Ledig plass til deg: {d.title}",
        f"En plass på «{d.title}» er ledig, og den holdes for deg i {h} timer, til {when_nb(until)}.\n\n{nb}\n\n"
        f"Si ja eller nei til plassen her: {url}\n\nSvarer du ikke innen da, går plassen til neste på ventelisten.",
        f"A seat for you: {d.title}",
        f"A seat at “{d.title}” is free and held for you for {h} hours, until {when_en(until)}.\n\n{en}\n\n"
        f"Accept or decline it here: {in_english(url)}\n\nIf you do not answer by then, the seat goes to the next "
        "on the waiting list.",
        "Svar",
        "Answer",
    )


def reminder(d: EventDefinition, page_url: str, cancel_url: str) -> Words:
    nb, en = _facts(d)
    cancel_nb, cancel_en = _cancel_lines(cancel_url)
    return Words(
        f"Påminnelse: {d.title}",
        f"Påminnelse: «{d.title}» er snart.\n\n{nb}\n\nArrangementet: {page_url}{cancel_nb}",
        f"Reminder: {d.title}",
        f"Reminder: “{d.title}” is soon.\n\n{en}\n\nThe event: {in_english(page_url)}{cancel_en}",
    )


def update(d: EventDefinition, status: str, page_url: str, cancel_url: str) -> Words:
    nb, en = _facts(d)
    cancel_nb, cancel_en = _cancel_lines(cancel_url, status)
    attached = (
        ("\n\nDen oppdaterte kalenderoppføringen ligger ved.", "\n\nThe updated calendar entry is attached.")
        if status == "registered"
        else ("", "")
    )
    return Words(
        f"Endret: {d.title}",
        f"«{d.title}» er endret. Slik er det nå:\n\n{nb}{attached[0]}\n\nArrangementet: {page_url}{cancel_nb}",
        f"Changed: {d.title}",
        f"“{d.title}” has changed. This is how it now stands:\n\n{en}{attached[1]}\n\n"
        f"The event: {in_english(page_url)}{cancel_en}",
    )


def withdrawal(d: EventDefinition) -> Words:
    """She cancelled her own registration."""
    return Words(
        f"Avmeldt: {d.title}",
        f"Du er meldt av «{d.title}» ({when_nb(d.starts_at)}); en kalenderoppføring for det fjernes.",
        f"Registration cancelled: {d.title}",
        f"You are no longer registered for “{d.title}” ({when_en(d.starts_at)}); a calendar entry for it is removed.",
    )


def cancellation(d: EventDefinition) -> Words:
    return Words(
        f"Avlyst: {d.title}",
        f"«{d.title}» ({when_nb(d.starts_at)}) er avlyst. Påmeldingen din gjelder ikke lenger, og "
        "kalenderoppføringen fjernes.",
        f"Cancelled: {d.title}",
        f"“{d.title}” ({when_en(d.starts_at)}) is cancelled. Your registration no longer applies, and the "
        "calendar entry is removed.",
    )


def invitation(d: EventDefinition) -> tuple[str, str]:
    """The campaign's subject and Markdown body; `{{ member_link }}` is her own link (the mailer's)."""
    nb, en = _facts(d)
    title = _markdown_text(d.title)
    description = _jinja_text(d.description.strip())
    body = (
        f"Hei {{{{ given_name }}}}!\n\nDu er invitert til **{title}**.\n\n{_lines(_markdown_text(nb))}\n\n"
        + (f"{description}\n\n" if description else "")
        + "[Se arrangementet og meld deg på]({{ member_link }})\n\n---\n\n"
        + f"You are invited to **{title}**.\n\n{_lines(_markdown_text(en))}\n\n"
        + "[See the event and register]({{ member_link }}&lang=en)\n\nHilsen USN Alumni"
    )
    return f"Invitasjon: {d.title}", body


def _lines(text: str) -> str:
    return text.replace("\n", "  \n")  # Markdown hard line breaks


def _markdown_text(text: str) -> str:
    """Plain text shown as itself in Markdown (and as itself in the campaign's template)."""
    escaped = "".join(f"\\{c}" if c in "\\`*_[]()#+-.!<>|~" else c for c in text)
    return _jinja_text(escaped)


def _jinja_text(text: str) -> str:
    """The mailer renders a campaign body as a (sandboxed) template: a brace in staff's
    text must come out as a brace, never start an expression."""
    return "".join(_BRACES.get(c, c) for c in text)


_BRACES = {"{": "{{ '{' }}", "}": "{{ '}' }}"}


_METHODS_NB = {
    "peers": "fra tidligere arrangementer av samme slag",
    "own-pace": "fra påmeldingstakten så langt",
    "decided": "beslutningsdatoen er nådd",
}
_METHODS_EN = {
    "peers": "from earlier events of the same kind",
    "own-pace": "from the pace of registration so far",
    "decided": "the decision date has come",
}


def turnout_alert(
    title: str, event_id: str, expected: int, minimum: int, decide_by: datetime, registrations: int,
    method: str, peers: int,
) -> tuple[str, str]:  # fmt: skip
    """To the organiser (a role address, so both languages): the forecast is below the minimum."""
    decide_nb, decide_en = when_nb(decide_by), when_en(decide_by)
    body = (
        f"Prognosen for «{title}» er under minimum.\n\n"
        f"Forventet antall påmeldte innen beslutningsdatoen: {expected}\nMinimum: {minimum}\n"
        f"Beslutningsdato: {decide_nb}\nPåmeldte nå: {registrations}\n"
        f"Prognosen er beregnet {_METHODS_NB.get(method, method)} (sammenlignbare arrangementer: {peers}).\n\n"
        f"Bekreft eller avlys arrangementet innen beslutningsdatoen (arrangement-id {event_id}: "
        f"POST /events/{event_id}/decision). Blir tallene vesentlig verre, får dere en ny e-post.\n\n"
        f"---\n\nThe turnout forecast for “{title}” is below its minimum.\n\n"
        f"Registrations expected by the decision date: {expected}\nMinimum: {minimum}\n"
        f"Decision date: {decide_en}\nRegistrations so far: {registrations}\n"
        f"The forecast is made {_METHODS_EN.get(method, method)} (comparable events: {peers}).\n\n"
        f"Confirm or cancel the event by the decision date (event id {event_id}: "
        f"POST /events/{event_id}/decision). Should the figures get materially worse, you will hear again.\n\n"
        "Hilsen USN Alumni"
    )
    return f"Få påmeldte: {title} / Low turnout forecast", body
