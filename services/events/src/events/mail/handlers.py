"""The mail stage: consumers of the service's own facts, each asking the mailer for the
mails the fact calls for (mail/requests.py), in the consumer's transaction with its inbox.

Reading its own topics, not adding to the flows' transactions, keeps the flows (and the
row lock every registration waits on) free of key lookups and mail texts; each fact is
mailed once (the inbox), and a fact is mailed only if it still holds when it is read: a
confirmation for a seat she has given up meanwhile, or an offer already answered, is not
sent. Every mail is built from the event as it now stands, with its current version as
the calendar SEQUENCE, so whichever mail arrives last in her calendar is the newest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from alumni_kit.consumer import Incoming
from alumni_kit.db import Conn
from alumni_kit.shredding import KeyRing
from events import repository
from events.calendar import ics
from events.checkin.codes import Keyring
from events.mail import repository as queries
from events.mail import texts
from events.mail.requests import Mail, calendar_attachment, request
from events.mail.ticket import ticket_parts
from events.repository import Event
from events.web.links import Links
from usn_schemas.events import EventFact, RegistrationFact


@dataclass(frozen=True)
class MailStage:
    keyring: KeyRing  # members' keys (membership), to seal each mail
    links: Links
    organizer: str
    checkin: Keyring  # the check-in codes' keys, for the ticket in the confirmation

    def entry(self, event: Event, version: int, registration_id: str, *, cancelled: bool = False) -> ics.Entry:
        d = event.definition
        return ics.Entry(
            uid=ics.registration_uid(registration_id),
            sequence=version,
            starts_at=d.starts_at,
            ends_at=d.ends_at,
            summary=d.title,
            description=d.description,
            location=texts.location(d),
            url=d.online_url,
            cancelled=cancelled,
        )

    def invite(self, event: Event, version: int, registration_id: str, method: ics.Method, now: datetime) -> str:
        entry = self.entry(event, version, registration_id, cancelled=method == "CANCEL")
        return ics.calendar([entry], method, self.organizer, now)

    # ---- one handler per fact ---------------------------------------------------------------------------

    async def on_registered(self, conn: Conn, events: list[Incoming]) -> None:
        """A seat is hers: the confirmation, with the calendar entry (REQUEST) and her ticket
        (check-in code, its QR as an SVG attachment, the link to her ticket page)."""
        now, mails = datetime.now(UTC), []
        for fact in _registration_facts(events):
            found = await self._current(conn, fact, "registered")
            if found is None:
                continue
            event, version = found
            assert fact.member_id is not None
            page = self.links.register(event.event_id, fact.member_id, event.starts_at, now)
            t = ticket_parts(self.checkin, self.links, event.event_id, event.starts_at, fact.member_id,
                             fact.registration_id, now)  # fmt: skip
            cancel = self.links.cancel(event.event_id, fact.member_id, event.starts_at, now)
            words = texts.confirmation(event.definition, page, (t.lines[0], t.lines[1]), cancel)
            ics_text = self.invite(event, version, fact.registration_id, "REQUEST", now)
            mails.append(Mail(fact.member_id, "event-confirmation", words, action_url=t.url,
                              attachments=[calendar_attachment(ics_text, "REQUEST"), t.qr]))  # fmt: skip
        await request(conn, self.keyring, mails)

    async def on_offer_made(self, conn: Conn, events: list[Incoming]) -> None:
        """A seat is held for her: the offer, with the page to accept or decline it and its time."""
        now, mails = datetime.now(UTC), []
        for fact in _registration_facts(events):
            found = await self._current(conn, fact, "offered")
            if found is None or fact.offer_expires_at is None:
                continue
            event, _ = found
            assert fact.member_id is not None
            url = self.links.offer(event.event_id, fact.member_id, fact.offer_expires_at, now)
            hold = fact.offer_expires_at - fact.at
            words = texts.offer(event.definition, fact.offer_expires_at, hold, url)
            mails.append(Mail(fact.member_id, "waitlist-promotion", words, action_url=url,
                              expires_at=fact.offer_expires_at))  # fmt: skip
        await request(conn, self.keyring, mails)

    async def on_updated(self, conn: Conn, events: list[Incoming]) -> None:
        """Everyone still in the event is told; those with a seat get the entry replaced."""
        for fact in _event_facts(events):
            event = await repository.get_event(conn, fact.event_id)
            if event is None or event.status != "published":
                continue  # cancelled since: the cancellation tells them
            version, now = await queries.version(conn, event.event_id), datetime.now(UTC)
            mails = []
            for r in await queries.active(conn, event.event_id):
                page = self.links.register(event.event_id, r.member_id, event.starts_at, now)
                cancel = self.links.cancel(event.event_id, r.member_id, event.starts_at, now)
                words = texts.update(event.definition, r.status, page, cancel)
                attachments = []
                if r.status == "registered":
                    attachments = [calendar_attachment(self.invite(event, version, r.registration_id, "REQUEST", now),
                                                       "REQUEST")]  # fmt: skip
                mails.append(Mail(r.member_id, "event-update", words, attachments=attachments))
            await request(conn, self.keyring, mails)

    async def on_cancelled(self, conn: Conn, events: list[Incoming]) -> None:
        """Every registrant is told (seat, offer or waiting list); a seat's entry is cancelled."""
        for fact in _event_facts(events):
            event = await repository.get_event(conn, fact.event_id)
            if event is None:
                continue
            version, now = await queries.version(conn, event.event_id), datetime.now(UTC)
            mails = []
            for r in await queries.active(conn, event.event_id):
                words = texts.cancellation(event.definition)
                attachments = []
                if r.status in ("registered", "offered"):
                    attachments = [calendar_attachment(self.invite(event, version, r.registration_id, "CANCEL", now),
                                                       "CANCEL")]  # fmt: skip
                mails.append(Mail(r.member_id, "event-cancellation", words, attachments=attachments))
            await request(conn, self.keyring, mails)

    async def on_registration_cancelled(self, conn: Conn, events: list[Incoming]) -> None:
        """She cancelled her own registration: told, and her entry removed (METHOD CANCEL).

        SEQUENCE is the event's version + 1: her entry's last revision, since nothing more is
        ever mailed about it (she cannot register for the event again). A declined offer
        had no entry, and an erased member has no member id left: neither gets a mail."""
        now, mails = datetime.now(UTC), []
        for fact in _registration_facts(events):
            if fact.member_id is None or fact.reason != "member":
                continue
            event = await repository.get_event(conn, fact.event_id)
            if event is None:
                continue
            version = await queries.version(conn, event.event_id) + 1
            words = texts.withdrawal(event.definition)
            ics_text = self.invite(event, version, fact.registration_id, "CANCEL", now)
            mails.append(Mail(fact.member_id, "event-cancellation", words,
                              attachments=[calendar_attachment(ics_text, "CANCEL")]))  # fmt: skip
        await request(conn, self.keyring, mails)

    async def remind(self, conn: Conn, event_id: str, now: datetime) -> int:
        """The reminder to everyone with a seat, once per event (any replica); how many."""
        event = await repository.get_event(conn, event_id)
        if event is None or event.status != "published" or not await queries.claim_reminder(conn, event_id, now):
            return 0
        mails = []
        for r in await queries.active(conn, event_id, ("registered",)):
            page = self.links.register(event_id, r.member_id, event.starts_at, now)
            cancel = self.links.cancel(event_id, r.member_id, event.starts_at, now)
            words = texts.reminder(event.definition, page, cancel)
            mails.append(Mail(r.member_id, "event-reminder", words, expires_at=event.starts_at))
        return await request(conn, self.keyring, mails)

    async def _current(self, conn: Conn, fact: RegistrationFact, status: str) -> tuple[Event, int] | None:
        """The event and its version if the registration still is `status` with her in it."""
        if fact.member_id is None:
            return None
        mine = await queries.registrant(conn, fact.registration_id)
        if mine is None or mine.status != status or mine.member_id != fact.member_id:
            return None
        event = await repository.get_event(conn, fact.event_id)
        if event is None or event.status != "published":
            return None
        return event, await queries.version(conn, event.event_id)


def _registration_facts(events: list[Incoming]) -> list[RegistrationFact]:
    facts = []
    for incoming in events:
        data = incoming.event.data
        assert isinstance(data, RegistrationFact)
        facts.append(data)
    return facts


def _event_facts(events: list[Incoming]) -> list[EventFact]:
    """One per event (the newest of a batch): each mail reads the event as it now stands anyway."""
    newest: dict[str, EventFact] = {}
    for incoming in events:
        data = incoming.event.data
        assert isinstance(data, EventFact)
        newest[data.event_id] = data
    return list(newest.values())
