"""`transactional-mail-requested` → one queued mail per event id (the sender sends it)."""

from __future__ import annotations

import json

from alumni_kit.consumer import Incoming
from alumni_kit.db import Conn
from usn_schemas.mail import TransactionalMail, TransactionalMailRequestedV1


async def on_transactional(conn: Conn, events: list[Incoming]) -> None:
    rows = []
    for incoming in events:
        event = incoming.event
        assert isinstance(event, TransactionalMailRequestedV1)
        # The trace context goes with it: the SMTP hand-off continues the request's trace.
        trace = json.dumps(incoming.trace_headers)
        rows.append((event.id, event.data.kind, event.data.member_id, _stored(event.data), trace))
    await conn.executemany(
        "INSERT INTO transactional (event_id, kind, member_id, mail, trace_context)"
        " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)"
        " ON CONFLICT (event_id) DO NOTHING",
        rows,
    )


def _stored(mail: TransactionalMail) -> str:
    """The mail as the sender reads it: a mail to a role goes to the role's address
    (`to_address`, as any address given; suppression is checked on it)."""
    if mail.to_role is not None:
        mail = mail.model_copy(update={"to_address": mail.to_role})
    return mail.model_dump_json()
