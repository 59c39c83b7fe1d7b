"""The events service's consumers (app.py lists what each one subscribes to)."""

from __future__ import annotations

from datetime import UTC, datetime

from alumni_kit.consumer import Incoming
from alumni_kit.db import Conn
from events import registrations
from usn_schemas.member import MemberErasedV1


async def on_member_erased(conn: Conn, events: list[Incoming]) -> None:
    erased = []
    for incoming in events:
        assert isinstance(incoming.event, MemberErasedV1)
        erased.append((incoming.event.data.member_id.lower(), incoming.event.data.erased_at))
    await registrations.erase_members(conn, erased, datetime.now(UTC))
