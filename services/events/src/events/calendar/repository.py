"""SQL of the feed: upcoming published events."""

from __future__ import annotations

from datetime import datetime

from alumni_kit.db import Conn
from usn_schemas.events import EventDefinition

# A feed is read by calendar clients every few hours: a bound keeps one answer small.
FEED_LIMIT = 500


async def upcoming(conn: Conn, now: datetime) -> list[tuple[str, int, EventDefinition]]:
    """(event id, version, definition) of published events that have not ended, by start."""
    rows = await conn.fetch(
        "SELECT event_id::text, version, definition::text FROM events WHERE status = 'published' AND ends_at > $1"
        " ORDER BY starts_at, event_id LIMIT $2",
        now,
        FEED_LIMIT,
    )
    return [(r["event_id"], int(r["version"]), EventDefinition.model_validate_json(r["definition"])) for r in rows]
