"""What membership's sign-up, application and login flows put in the outbox.

Every message holding personal data is sealed with its subject's key
(crypto-shredding, alumni_kit.shredding). A sign-up or application that is not a
member yet is its own subject; it becomes the member with the same id, so the
key carries over and erasing the member makes its earlier mails unreadable too.
"""

from __future__ import annotations

from alumni_kit.db import Conn
from alumni_kit.outbox import OutboxMessage
from membership import SOURCE
from membership.members.domain import Member
from membership.rights.keys import subject_key
from usn_schemas.mail import TransactionalMail, TransactionalMailRequestedV1
from usn_schemas.member import MemberRegisteredV1


async def member_registered(conn: Conn, member: Member) -> OutboxMessage:
    event = MemberRegisteredV1.create(subject=member.member_id, data=member.snapshot(), source=SOURCE)
    key = await subject_key(conn, member.member_id)
    return OutboxMessage(topic="member-registered", key=member.member_id, event=event, seal=key)


async def mail_request(conn: Conn, subject_id: str, mail: TransactionalMail) -> OutboxMessage:
    """A `transactional-mail-requested` about `subject_id` (key = that id)."""
    event = TransactionalMailRequestedV1.create(subject=subject_id, data=mail, source=SOURCE)
    key = await subject_key(conn, subject_id)
    return OutboxMessage(topic="transactional-mail-requested", key=subject_id, event=event, seal=key)
