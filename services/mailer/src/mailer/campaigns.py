"""Campaign requests (topic `campaigns`) → scheduled campaigns; audiences → delivery rows."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import asyncpg

from alumni_kit.consumer import BatchHandler, Incoming
from alumni_kit.db import Conn
from alumni_kit.errors import InputRefusedError
from alumni_kit.outbox import OutboxMessage, add_to_outbox
from mailer import SOURCE, compose
from mailer.bodies import TemplateProblemError
from mailer.rendering import Renderer
from usn_schemas.campaign import Audience, CampaignRequest, CampaignRequestedV1, CampaignStatus, CampaignStatusV1

log = logging.getLogger(__name__)
# A failed campaign's reason as stored and published (the contract allows 1000).
REASON_CHARS = 500


class CampaignRefusedError(InputRefusedError):
    """A well-formed request the mailer cannot accept (dead-lettered with this reason)."""


def content_of(request: CampaignRequest) -> compose.Campaign:
    return compose.Campaign(
        request.campaign_id,
        request.faculty,
        request.subject,
        request.body_markdown,
        request.language,
        request.track_opens,
        request.member_link.url if request.member_link else None,
        request.member_link.valid_days if request.member_link else None,
    )


def make_campaign_handler(purposes: tuple[str, ...], renderer: Renderer) -> BatchHandler:
    async def on_campaigns(conn: Conn, events: list[Incoming]) -> None:
        for incoming in events:
            assert isinstance(incoming.event, CampaignRequestedV1)
            request = incoming.event.data
            if request.purpose not in purposes:
                raise CampaignRefusedError(f"unknown purpose {request.purpose!r}; allowed: {', '.join(purposes)}")
            if await conn.fetchval("SELECT 1 FROM campaigns WHERE campaign_id = $1", request.campaign_id):
                continue  # a repeated request has no effect (and costs no rendering)
            # Rendered in full for a synthetic recipient before it is accepted: a template that
            # fails is this campaign's failure alone (the staff API has checked the same already;
            # other tools may not have). RendererUnavailableError is transient: retried.
            try:
                await renderer.prepare(content_of(request))
            except TemplateProblemError as exc:
                log.warning("campaign %s refused: template %s", request.campaign_id, exc)
                await schedule(conn, request, failure=f"template {exc}")
                continue
            await schedule(conn, request)

    return on_campaigns


async def schedule(conn: Conn, request: CampaignRequest, failure: str | None = None) -> bool:
    """Store a campaign once (as `failed` with the reason if it cannot be rendered); a
    second request with the same id has no effect (False)."""
    inserted = await conn.fetchval(
        """INSERT INTO campaigns (campaign_id, requested_by, faculty, purpose, audience, subject, body_markdown,
                                  language, track_opens, send_at, status, failure_reason, finished_at,
                                  member_link_url, member_link_days)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12,
                   CASE WHEN $12::text IS NULL THEN NULL ELSE now() END, $13, $14)
           ON CONFLICT (campaign_id) DO NOTHING RETURNING true""",
        request.campaign_id,
        request.requested_by,
        request.faculty,
        request.purpose,
        request.audience.model_dump_json(exclude_none=True),
        request.subject,
        request.body_markdown,
        request.language,
        request.track_opens,
        request.send_at or datetime.now(UTC),
        "scheduled" if failure is None else "failed",
        failure and failure[:REASON_CHARS],
        request.member_link.url if request.member_link else None,
        request.member_link.valid_days if request.member_link else None,
    )
    if inserted:
        await publish_status(conn, request.campaign_id)
    return bool(inserted)


async def fail(conn: Conn, campaign_id: str, reason: str) -> int:
    """A sending campaign that cannot be rendered: failed with the reason, its pending
    deliveries skipped (`campaign-failed`); nothing else is touched. Returns how many."""
    updated = await conn.fetchval(
        "UPDATE campaigns SET status = 'failed', failure_reason = $2, finished_at = now()"
        " WHERE campaign_id = $1 AND status IN ('scheduled', 'sending') RETURNING true",
        campaign_id,
        reason[:REASON_CHARS],
    )
    if not updated:
        return 0
    skipped = await conn.fetchval(
        "WITH s AS (UPDATE deliveries SET state = 'skipped', reason = 'campaign-failed', updated_at = now()"
        " WHERE campaign_id = $1 AND state = 'pending' RETURNING 1) SELECT count(*) FROM s",
        campaign_id,
    )
    await publish_status(conn, campaign_id)
    return int(skipped or 0)


def audience_query(faculty: str, audience: Audience) -> tuple[str, list[Any]]:
    """SQL selecting the member ids of an audience. A faculty sender reaches only
    her faculty's members, whatever the audience asks for."""
    # Members without an address are included: their delivery is skipped with the reason, so it shows.
    clauses: list[str] = ["true"]
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if faculty != "USN":
        clauses.append(f"{arg(faculty)} = any(faculties)")
    if audience.faculties:
        clauses.append(f"faculties && {arg(audience.faculties)}::text[]")
    programme_filters = []
    if audience.programme_codes:
        programme_filters.append(f"p->>'code' = any({arg(audience.programme_codes)}::text[])")
    if audience.degree_levels:
        programme_filters.append(f"p->>'level' = any({arg(audience.degree_levels)}::text[])")
    if audience.campuses:
        programme_filters.append(f"p->>'campus' = any({arg(audience.campuses)}::text[])")
    if audience.graduation_year_from is not None:
        programme_filters.append(f"(p->>'year')::int >= {arg(audience.graduation_year_from)}")
    if audience.graduation_year_to is not None:
        programme_filters.append(f"(p->>'year')::int <= {arg(audience.graduation_year_to)}")
    if faculty != "USN":
        programme_filters.append(f"p->>'faculty' = {arg(faculty)}")
    if programme_filters:
        # One programme must meet every programme condition (a TNM master from 2020, not
        # a TNM bachelor from 2012 plus someone else's master).
        clauses.append(
            "EXISTS (SELECT 1 FROM jsonb_array_elements(programmes) p WHERE " + " AND ".join(programme_filters) + ")"
        )
    return "SELECT member_id FROM members WHERE " + " AND ".join(f"({c})" for c in clauses), args


async def resolve_audience(conn: Conn, campaign_id: str) -> int:
    """Create the delivery rows of a due campaign and mark it sending; returns how many."""
    row = await conn.fetchrow("SELECT faculty, audience FROM campaigns WHERE campaign_id = $1", campaign_id)
    assert row is not None
    query, args = audience_query(row["faculty"], Audience.model_validate(json.loads(row["audience"])))
    count = await conn.fetchval(
        f"""WITH audience AS ({query}),
                 created AS (INSERT INTO deliveries (campaign_id, member_id)
                             SELECT ${len(args) + 1}, member_id FROM audience
                             ON CONFLICT (campaign_id, member_id) DO NOTHING RETURNING 1)
            SELECT count(*) FROM created""",
        *args,
        campaign_id,
    )
    await conn.execute("UPDATE campaigns SET status = 'sending' WHERE campaign_id = $1", campaign_id)
    await publish_status(conn, campaign_id)
    return int(count or 0)


async def status_of(conn: Conn, campaign_id: str) -> CampaignStatus | None:
    campaign = await conn.fetchrow(
        "SELECT faculty, purpose, status, failure_reason FROM campaigns WHERE campaign_id = $1", campaign_id
    )
    if campaign is None:
        return None
    counts = await conn.fetch(
        "SELECT state, coalesce(reason, '') AS reason, count(*) AS n FROM deliveries"
        " WHERE campaign_id = $1 GROUP BY state, reason",
        campaign_id,
    )
    by_state: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for r in counts:
        by_state[r["state"]] = by_state.get(r["state"], 0) + r["n"]
        if r["state"] == "skipped":
            skipped[r["reason"] or "unknown"] = r["n"]
    return CampaignStatus(
        campaign_id=campaign_id,
        faculty=campaign["faculty"],
        purpose=campaign["purpose"],
        status=campaign["status"],
        recipients=sum(by_state.values()),
        sent=by_state.get("sent", 0),
        skipped=skipped,
        bounced=by_state.get("bounced", 0),
        failed=by_state.get("failed", 0),
        uncertain=by_state.get("uncertain", 0),
        reason=campaign["failure_reason"],
        at=datetime.now(UTC),
    )


async def publish_status(conn: Conn, campaign_id: str, paused: bool = False) -> None:
    status = await status_of(conn, campaign_id)
    if status is None:
        return
    if paused and status.status == "sending":
        status = status.model_copy(update={"status": "paused"})
    event = CampaignStatusV1.create(subject=campaign_id, data=status, source=SOURCE)
    await add_to_outbox(conn, [OutboxMessage(topic="campaign-status", key=campaign_id, event=event)])


async def get(conn: Conn, campaign_id: str) -> asyncpg.Record | None:
    """The campaign's row, or None when it does not exist (or was not consumed from the topic yet)."""
    row: asyncpg.Record | None = await conn.fetchrow("SELECT * FROM campaigns WHERE campaign_id = $1", campaign_id)
    return row


async def cancel(conn: Conn, campaign_id: str) -> int:
    """Cancel the campaign and skip its pending deliveries (in the caller's transaction); how many."""
    await conn.execute("UPDATE campaigns SET status = 'cancelled' WHERE campaign_id = $1", campaign_id)
    skipped: int = await conn.fetchval(
        "WITH s AS (UPDATE deliveries SET state = 'skipped', reason = 'cancelled', updated_at = now()"
        " WHERE campaign_id = $1 AND state = 'pending' RETURNING 1) SELECT count(*) FROM s",
        campaign_id,
    )
    await publish_status(conn, campaign_id)
    return skipped


async def uncertain_deliveries(conn: Conn, campaign_id: str) -> list[dict[str, Any]]:
    """Deliveries whose outcome is unknown (docs/mailer.md), oldest first."""
    rows = await conn.fetch(
        "SELECT member_id, message_id, reason, updated_at FROM deliveries"
        " WHERE campaign_id = $1 AND state = 'uncertain' ORDER BY id",
        campaign_id,
    )
    return [dict(r) for r in rows]
