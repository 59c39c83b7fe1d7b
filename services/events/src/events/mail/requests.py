"""Transactional mail requests to the mailer, written to the events service's outbox.

The service knows members by id only: a request names the member and no address, and
the mailer sends it to the address in its own copy of the member, with its suppression
list and erasure checks as for every transactional mail (usn_schemas.mail). The text
holds her personal links, so it is sealed with her key from membership, as every
service seals personal data (docs/erasure.md); a member membership reports erased gets
no mail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from alumni_kit.db import Conn
from alumni_kit.outbox import OutboxMessage, add_to_outbox
from alumni_kit.shredding import KeyRing
from events.mail.texts import Words
from usn_schemas.mail import Attachment, MailKind, TransactionalMail, TransactionalMailRequestedV1

TOPIC = "transactional-mail-requested"
SOURCE = "/usn-alumni/events"


@dataclass(frozen=True)
class Mail:
    member_id: str
    kind: MailKind
    words: Words  # in bokmål and English: the mailer picks her language, or sends both
    action_url: str | None = None
    expires_at: datetime | None = None
    attachments: list[Attachment] = field(default_factory=list)


def calendar_attachment(ics: str, method: str) -> Attachment:
    """Her calendar entry; the mailer adds her as its ATTENDEE (RFC 5546: a REQUEST or CANCEL
    names its attendee, and only the mailer knows her address)."""
    return Attachment(filename="event.ics", content_type=f"text/calendar; method={method}", content=ics,
                      add_recipient_as_attendee=True)  # fmt: skip


async def request(conn: Conn, keyring: KeyRing, mails: list[Mail]) -> int:
    """The mails into the outbox, in the caller's transaction; how many (erased members get none)."""
    if not mails:
        return 0
    keys = await keyring.current({m.member_id for m in mails})
    messages = []
    for m in mails:
        key = keys.get(m.member_id)
        if key is None:
            continue  # erased at membership: nothing may be sealed for her any more
        data = TransactionalMail(
            kind=m.kind,
            member_id=m.member_id,
            language="nb",
            subject=m.words.subject[:200],
            body_text=m.words.body,
            action_url=m.action_url,
            action_label=m.words.label,
            translations=m.words.translations(m.action_url),
            expires_at=m.expires_at,
            attachments=m.attachments,
        )
        event = TransactionalMailRequestedV1.create(subject=m.member_id, data=data, source=SOURCE)
        messages.append(OutboxMessage(TOPIC, m.member_id, event, seal=key))
    await add_to_outbox(conn, messages)
    return len(messages)


async def request_to_role(
    conn: Conn, to: str, kind: MailKind, about: str, subject: str, body_text: str, expires_at: datetime | None
) -> None:
    """A mail to a role's address (an organiser's functional mailbox), into the outbox in the
    caller's transaction. It is about no person, so nothing is sealed (usn_schemas.mail);
    keyed by what it is `about` (the event id)."""
    data = TransactionalMail(
        kind=kind, to_role=to, language="nb", subject=subject[:200], body_text=body_text, expires_at=expires_at
    )
    event = TransactionalMailRequestedV1.create(subject=about, data=data, source=SOURCE)
    await add_to_outbox(conn, [OutboxMessage(TOPIC, about, event)])
