"""The events service's consumers (app.py lists what each one subscribes to)."""

from __future__ import annotations

from datetime import UTC, datetime

from alumni_kit.consumer import Incoming
from alumni_kit.db import Conn
from events import registrations
from usn_schemas.member import MemberErasedV1


async def on_member_erased(conn: Conn, events: list[Incoming]) -> None:
    for incoming in events:
        assert isinstance(incoming.event, MemberErasedV1)
        erasure = incoming.event.data
        await registrations.erase_member(conn, erasure.member_id.lower(), erasure.erased_at, datetime.now(UTC))
