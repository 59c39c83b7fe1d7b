"""`GET /events/calendar.ics`: upcoming published events as an iCalendar feed (no login;
nothing personal in it). A calendar client that subscribes sees changes and
cancellations replace the entries: each event's UID is stable and its SEQUENCE is the
event's version."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import Response

from alumni_kit.http import SECURITY_HEADERS
from alumni_kit.runtime import ServiceRuntime
from events.calendar import ics
from events.calendar.repository import upcoming
from events.mail.texts import location


def calendar_router(runtime: ServiceRuntime, organizer: str) -> APIRouter:
    router = APIRouter(tags=["calendar"])

    @router.get(
        "/events/calendar.ics",
        response_class=Response,
        responses={200: {"content": {"text/calendar": {"schema": {"type": "string"}}}, "description": "iCalendar"}},
    )
    async def feed() -> Response:
        """Published events that have not ended (at most 500, by start), METHOD:PUBLISH."""
        now = datetime.now(UTC)
        async with runtime.pool.acquire() as conn:
            events = await upcoming(conn, now)
        entries = [
            ics.Entry(
                ics.event_uid(event_id),
                version,
                d.starts_at,
                d.ends_at,
                d.title,
                d.description,
                location(d),
                d.online_url,
            )
            for event_id, version, d in events
        ]
        body = ics.calendar(entries, "PUBLISH", organizer, now)
        headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=300"}
        return Response(body, media_type="text/calendar; charset=utf-8", headers=headers)

    return router
