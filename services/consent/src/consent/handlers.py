"""Consent's event handlers (app.py lists what each one subscribes to)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from alumni_kit.consumer import BatchHandler, Incoming
from alumni_kit.db import Conn
from alumni_kit.outbox import add_to_outbox
from alumni_kit.shredding import KeyRing
from consent import mails, subjects
from consent.links import Links
from consent.metrics import ConsentMetrics
from consent.subjects import MemberCopy
from usn_schemas.member import MemberErasedV1, MemberRegisteredV1, MemberUpdatedV1


def make_member_handler(
    links: Links, invitations: bool, invitation_days: int, metrics: ConsentMetrics, keyring: KeyRing
) -> BatchHandler:
    """member-registered / member-updated → the member copy; a first invitation if due.

    Invitations are sealed with each member's key from membership; a member
    erased in the meantime has none and gets no invitation.
    """

    async def on_member(conn: Conn, events: list[Incoming]) -> None:
        copies, may_invite = [], set()
        traces = {}  # member -> the context of her latest fact here: her invitation continues its trace
        for incoming in events:
            event = incoming.event
            assert isinstance(event, MemberRegisteredV1 | MemberUpdatedV1)
            m = event.data
            copies.append(MemberCopy(m.member_id, m.given_name, m.email, list(m.faculties), event.time))
            traces[m.member_id] = incoming.trace_headers
            # A new member, or one whose address arrived: other updates never trigger an invitation,
            # so switching invitations on later does not invite everyone touched by a correction.
            if isinstance(event, MemberRegisteredV1) or "email" in event.data.changed:
                may_invite.add(m.member_id)
        due = await subjects.upsert(conn, copies, may_invite if invitations else set())
        if not due:
            return
        ttl = invitation_days * 86400
        expires = datetime.now(UTC) + timedelta(seconds=ttl)
        keys = await keyring.current(set(due))
        messages = []
        for s in await subjects.get_many(conn, due):
            if s.member_id not in keys:
                continue
            try:
                link = links.preferences(s.member_id, ttl)
                messages.append(
                    mails.invitation(s, link, invitation_days, expires, keys[s.member_id], traces.get(s.member_id))
                )
            except ValidationError:
                # An address the mail contract refuses (FS's rule for addresses is looser than
                # the mailer's): her copy is kept, she is just not invited there.
                metrics.not_invited.labels("address").inc()
        await add_to_outbox(conn, messages)
        # Counted in the transaction: a batch retried after a transient failure counts twice.
        metrics.mails.labels("consent-invitation").inc(len(messages))

    return on_member


async def on_member_erased(conn: Conn, events: list[Incoming]) -> None:
    for incoming in events:
        assert isinstance(incoming.event, MemberErasedV1)
        await subjects.erase(conn, incoming.event.data.member_id, incoming.event.data.erased_at)
