"""The mailer's staff API: create, schedule, cancel, preview and follow campaigns.

Communications staff send for USN or any faculty; an Alumnikontakt (AK) only for
her own faculty, and her campaigns reach only its members. A created campaign is
written to the `campaigns` topic (through the outbox), exactly as a communications
tool would publish it, and scheduled when the mailer consumes it. Before that it is
rendered in full for a synthetic recipient (422 with the template's line) and its
event measured in bytes against what the topic and its consumers take (413).
"""

from __future__ import annotations

from collections.abc import Callable
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import ValidationError

from alumni_kit.auth import StaffPrincipal
from alumni_kit.db import Conn
from alumni_kit.http import BODY_REFUSALS, STAFF_REFUSALS, refusals
from alumni_kit.outbox import OutboxMessage, add_to_outbox
from alumni_kit.runtime import ServiceRuntime
from alumni_kit.topics import PLATFORM_TOPICS
from mailer import SOURCE, campaigns, compose, members
from mailer.bodies import TemplateProblemError
from mailer.rendering import Renderer, RendererUnavailableError
from usn_schemas.campaign import CampaignRequest, CampaignRequestedV1

CampaignId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
SENDING_ROLES = ("comms", "ak")
STAFF_API_SOURCE = f"{SOURCE}/staff-api"


def _may_send_for(who: StaffPrincipal, faculty: str) -> None:
    if who.role not in SENDING_ROLES:
        raise HTTPException(403, "campaigns are sent by communications staff and each faculty's Alumnikontakt")
    if who.role == "ak" and faculty != who.faculty:
        raise HTTPException(403, f"an Alumnikontakt sends for her own faculty only ({who.faculty})")


def _check_purpose(request: CampaignRequest, purposes: tuple[str, ...]) -> None:
    if request.purpose not in purposes:
        raise HTTPException(
            422,
            [{"loc": ["body", "purpose"], "msg": f"unknown purpose; allowed: {', '.join(purposes)}",
              "type": "enum", "ctx": {"expected": list(purposes)}}],
        )  # fmt: skip


def _event_limit() -> int:
    """The largest `campaigns` event value that every part of the way accepts, in bytes:
    the contract (the consumer refuses more) and the topic (less room for key and headers)."""
    topic = next(t for t in PLATFORM_TOPICS if t.name == "campaigns")
    return min(CampaignRequestedV1.MAX_BYTES, topic.max_message_bytes - _RECORD_HEADROOM)


# Key, headers (traceparent) and the record batch's own bytes, within the topic's limit.
_RECORD_HEADROOM = 16 * 1024
EVENT_LIMIT = _event_limit()


def _check_size(message: OutboxMessage) -> None:
    size = len(message.record()[2])  # the bytes the relay will publish (UTF-8: 'ø' is two)
    if size > EVENT_LIMIT:
        raise HTTPException(
            413,
            [{"loc": ["body"], "type": "too_large", "ctx": {"limit": EVENT_LIMIT, "size": size},
              "msg": f"the campaign's event would be {size} bytes (UTF-8); the campaigns topic takes at most"
                     f" {EVENT_LIMIT} bytes"}],
        )  # fmt: skip


async def _check_template(renderer: Renderer, request: CampaignRequest) -> None:
    """Rendered in full for a synthetic recipient before it is accepted (in the render worker,
    bounded in time and size). The message names the line and the problem; it can quote
    nothing but the template itself, never a member's data (none is rendered)."""
    try:
        await renderer.prepare(campaigns.content_of(request))
    except TemplateProblemError as exc:
        raise HTTPException(
            422, [{"loc": ["body", "body_markdown"], "msg": str(exc), "type": "template", "line": exc.line}]
        ) from None
    except RendererUnavailableError:
        raise HTTPException(503, "campaigns cannot be checked right now; try again") from None


_CREATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "this role may not send for this faculty"},
    409: {"description": "a campaign with this id exists"},
    413: {"description": "the campaign's event would exceed the campaigns topic's limit (bytes, in `ctx.limit`)"},
    422: {"description": "invalid request, unknown purpose (`ctx.expected`) or a template error (`line`)"},
    503: {"description": "the template could not be checked now"},
}


def staff_router(
    runtime: ServiceRuntime,
    staff: Callable[..., StaffPrincipal],
    purposes: tuple[str, ...],
    renderer: Renderer,
    domain: str,
) -> APIRouter:
    router = APIRouter(prefix="/campaigns", tags=["campaigns (staff)"], responses=STAFF_REFUSALS | refusals(404, 409))

    async def visible(conn: Conn, campaign_id: str, who: StaffPrincipal) -> Any:
        row = await campaigns.get(conn, campaign_id)
        if row is None:
            raise HTTPException(404, "no such campaign (or not consumed from the topic yet)")
        _may_send_for(who, row["faculty"])
        return row

    # The body refusals, with the precise meaning each has here.
    @router.post("", status_code=202, responses=BODY_REFUSALS | _CREATE_RESPONSES)
    async def create(body: dict[str, Any], who: StaffPrincipal = Depends(staff)) -> dict[str, Any]:
        try:
            request = CampaignRequest.model_validate({**body, "requested_by": who.subject})
        except ValidationError as exc:
            raise HTTPException(422, exc.errors(include_url=False, include_input=False)) from None
        _may_send_for(who, request.faculty)
        _check_purpose(request, purposes)
        event = CampaignRequestedV1.create(subject=request.campaign_id, data=request, source=STAFF_API_SOURCE)
        message = OutboxMessage(topic="campaigns", key=request.campaign_id, event=event)
        _check_size(message)
        await _check_template(renderer, request)
        async with runtime.pool.acquire() as conn, conn.transaction():
            if await campaigns.get(conn, request.campaign_id) is not None:
                raise HTTPException(409, "a campaign with this id exists; a second request would have no effect")
            await add_to_outbox(conn, [message])
        return {"campaign_id": request.campaign_id, "status": "requested"}

    @router.get("/{campaign_id}")
    async def status(campaign_id: CampaignId, who: StaffPrincipal = Depends(staff)) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            await visible(conn, campaign_id, who)
            found = await campaigns.status_of(conn, campaign_id)
        assert found is not None
        return found.model_dump(mode="json")

    @router.post("/{campaign_id}/cancel")
    async def cancel(campaign_id: CampaignId, who: StaffPrincipal = Depends(staff)) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn, conn.transaction():
            row = await visible(conn, campaign_id, who)
            if row["status"] in ("done", "cancelled", "failed"):
                raise HTTPException(409, f"the campaign is {row['status']}")
            skipped = await campaigns.cancel(conn, campaign_id)
        return {"campaign_id": campaign_id, "status": "cancelled", "not_sent": skipped}

    @router.get("/{campaign_id}/preview")
    async def preview(
        campaign_id: CampaignId,
        member_id: Annotated[str, Query(min_length=1, max_length=64)],
        who: StaffPrincipal = Depends(staff),
    ) -> dict[str, Any]:
        """The campaign as one member would get it (links are not live)."""
        async with runtime.pool.acquire() as conn:
            row = await visible(conn, campaign_id, who)
            member = await members.recipient(conn, member_id)
        if member is None or (row["faculty"] != "USN" and row["faculty"] not in member["faculties"]):
            raise HTTPException(404, "no such member in this campaign's reach")
        content = compose.Campaign(
            row["campaign_id"],
            row["faculty"],
            row["subject"],
            row["body_markdown"],
            row["language"],
            row["track_opens"],
            row["member_link_url"],
            row["member_link_days"],
        )
        recipient = compose.Recipient(member_id, member["email"] or "", member["given_name"], member["family_name"])
        links = compose.Links(
            "https://preview.invalid/unsubscribe",
            "unsubscribe@preview.invalid",
            lambda u: u,
            None,
            "https://preview.invalid/member-link" if row["member_link_url"] else None,
        )
        try:
            prepared = await renderer.prepare(content)
        except TemplateProblemError as exc:
            raise HTTPException(422, {"msg": str(exc), "line": exc.line}) from None
        except RendererUnavailableError:
            raise HTTPException(503, "the campaign cannot be rendered right now; try again") from None
        raw = prepared.render(recipient, links, compose.new_message_id(domain))
        message = message_from_bytes(raw, policy=default)
        assert isinstance(message, EmailMessage)
        parts = {p.get_content_type(): p.get_content() for p in message.iter_parts()}
        return {"subject": message["Subject"], "text": parts.get("text/plain"), "html": parts.get("text/html")}

    @router.get("/{campaign_id}/uncertain")
    async def uncertain(campaign_id: CampaignId, who: StaffPrincipal = Depends(staff)) -> dict[str, Any]:
        """Deliveries whose outcome is unknown (see docs/mailer.md): never resent automatically."""
        async with runtime.pool.acquire() as conn:
            await visible(conn, campaign_id, who)
            rows = await campaigns.uncertain_deliveries(conn, campaign_id)
        return {"campaign_id": campaign_id, "uncertain": rows}

    return router
