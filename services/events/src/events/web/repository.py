"""SQL of the pages: her place on the waiting list."""

from __future__ import annotations

from alumni_kit.db import Conn


async def waitlist_position(conn: Conn, event_id: str, arrival: int) -> int:
    """1 = next in line: those waiting who arrived before her, and her."""
    n = await conn.fetchval(
        "SELECT count(*) FROM registrations WHERE event_id = $1 AND status = 'waitlisted' AND arrival <= $2",
        event_id,
        arrival,
    )
    return int(n)
