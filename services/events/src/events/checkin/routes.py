"""Check-in routes: the staff API (`POST /events/{id}/checkin`, the signed revocation list),
the public keys (`GET /checkin/keys`), her ticket page and the staff door page. Thin: the
codes are in codes.py, the redemption in redeem.py, the SQL in repository.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import HTMLResponse, Response
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from alumni_kit.auth import ExpiredTokenError, InvalidTokenError, StaffPrincipal, TokenSigner, verify_member_link
from alumni_kit.http import BODY_REFUSALS, STAFF_REFUSALS, answers_in, refusals
from alumni_kit.pages import language
from alumni_kit.runtime import ServiceRuntime
from alumni_kit.text_input import TextInput
from events import repository
from events.checkin import pages
from events.checkin import repository as seats
from events.checkin.codes import Keyring, ticket
from events.checkin.redeem import claims_for, locked_event, redeem
from events.checkin.verifier import sign_list
from events.registrations import RefusedError
from events.repository import Event
from usn_schemas.ids import MemberId
from usn_schemas.vocabulary import UUID_PATTERN

EventIdPath = Annotated[str, Path(pattern=UUID_PATTERN)]
# Who may check members in: communications at any event, an AK/AT at her faculty's events.
DOOR_ROLES = ("comms", "ak", "at")
LINK_PURPOSE = "events"  # her ticket page opens with the same signed link as her registration
_MEMBER_ID: TypeAdapter[str] = TypeAdapter(MemberId)


class CheckinRequest(TextInput):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=1000)


class CheckedIn(BaseModel):
    registration_id: str
    # False on a repeat: she was checked in before, at `checked_in_at`.
    first_use: bool
    status: str  # checked_in | already_checked_in
    checked_in_at: datetime


class SignedList(BaseModel):
    kid: str
    payload: str  # base64url of the JSON list (events/checkin/verifier.py)
    signature: str


def _may_check_in(who: StaffPrincipal, event: Event) -> None:
    if who.role not in DOOR_ROLES or not who.may_see(event.organiser):
        raise HTTPException(403, f"role {who.role} may not check in at events organised by {event.organiser}")


def staff_router(runtime: ServiceRuntime, staff: Callable[..., StaffPrincipal], keyring: Keyring) -> APIRouter:
    router = APIRouter(tags=["check-in"], responses=STAFF_REFUSALS)
    public_keys = keyring.public_keys()
    # Outcomes only (first, repeat, or the refusal's status code): never who, never which event.
    redemptions = Counter(
        "events_checkins",
        "Check-in code redemptions by outcome (first, repeat, or the refusal's status code).",
        ["outcome"],
        registry=runtime.metrics.registry,
    )

    @router.post("/events/{event_id}/checkin", responses={**refusals(400, 404, 409, 410), **BODY_REFUSALS})
    async def check_in(event_id: EventIdPath, body: CheckinRequest, who: StaffPrincipal = Depends(staff)) -> CheckedIn:
        """Redeem a code: the first time she is checked in (`event-attended`); a repeat changes
        nothing and says when she was first checked in. 400 forged or damaged, 409 another
        event's code, 410 a cancelled registration or event, or the event is over."""
        event_id = event_id.lower()
        try:
            async with runtime.pool.acquire() as conn, conn.transaction():
                event = await locked_event(conn, event_id)
                _may_check_in(who, event)
                registration_id = claims_for(body.code, event_id, public_keys)
                done = await redeem(conn, event, registration_id, who.subject, datetime.now(UTC))
        except RefusedError as exc:
            redemptions.labels(str(exc.status)).inc()
            raise HTTPException(exc.status, exc.detail) from None
        redemptions.labels("first" if done.first else "repeat").inc()
        status = "checked_in" if done.first else "already_checked_in"
        return CheckedIn(
            registration_id=done.registration_id, first_use=done.first, status=status, checked_in_at=done.checked_in_at
        )

    @router.get("/events/{event_id}/checkin/revocations", responses=refusals(404))
    async def revocation_list(event_id: EventIdPath, who: StaffPrincipal = Depends(staff)) -> SignedList:
        """The event's revoked codes (cancelled registrations), signed, for a door to sync and
        check codes offline (`python -m events.checkin.verify`)."""
        async with runtime.pool.acquire() as conn:
            event = await repository.get_event(conn, event_id.lower())
            if event is None or event.status == "draft":
                raise HTTPException(404, "no such event")
            _may_check_in(who, event)
            found = await seats.revocations(conn, event.event_id)
        assert found is not None
        signed = sign_list(keyring, event.event_id, found.version, datetime.now(UTC), found.event_status, found.revoked)
        return SignedList(**signed)

    return router


def public_router(runtime: ServiceRuntime, signer: TokenSigner, keyring: Keyring) -> APIRouter:
    router = APIRouter(tags=["check-in"])
    jwks = keyring.jwks()

    @router.get("/checkin/keys")
    async def keys() -> dict[str, Any]:
        """The public keys of check-in codes and revocation lists (a JWK set, Ed25519), by key id."""
        return jwks

    @router.get(
        "/checkin/checkin.js",
        response_class=Response,
        responses=answers_in("text/javascript", {200: "The door page's script."}),
    )
    async def door_script() -> Response:
        return pages.door_script()

    page_answers = answers_in("text/html", {200: "The page.", 404: "No such event.", 403: "A forged link."})

    @router.get("/events/{event_id}/checkin", response_class=HTMLResponse, responses=page_answers)
    async def door(event_id: EventIdPath, lang: str | None = None) -> HTMLResponse:
        """The staff check-in page (a phone at the door). It holds no data: it calls the
        check-in API with the staff token the user gives it."""
        lang_ = language(lang)
        async with runtime.pool.acquire() as conn:
            event = await repository.get_event(conn, event_id.lower())
        if event is None or event.status == "draft":
            return pages.message(lang_, "no_event", "no_event_text", 404)
        return pages.door_page(lang_, event)

    ticket_answers = answers_in(
        "text/html", {200: "Her ticket.", 403: "A forged link.", 404: "No seat.", 410: "Expired link or cancelled."}
    )

    @router.get("/events/{event_id}/ticket", response_class=HTMLResponse, responses=ticket_answers)
    async def ticket_page(
        event_id: EventIdPath, token: Annotated[str, Query(max_length=2000)] = "", lang: str | None = None
    ) -> HTMLResponse:
        """Her QR code and check-in code, from her signed member link (purpose `events`)."""
        lang_ = language(lang)
        try:
            claims = verify_member_link(signer, token, LINK_PURPOSE)
            member_id = _MEMBER_ID.validate_python(claims.get("sub")).lower()
        except ExpiredTokenError:
            return pages.message(lang_, "expired_link", "expired_link_text", 410)
        except (InvalidTokenError, ValueError):
            return pages.message(lang_, "bad_link", "bad_link_text", 403)
        async with runtime.pool.acquire() as conn:
            event = await repository.get_event(conn, event_id.lower())
            mine = await seats.seat_of_member(conn, event_id.lower(), member_id) if event else None
        if event is None or event.status == "draft":
            return pages.message(lang_, "no_event", "no_event_text", 404)
        if mine is None:
            return pages.message(lang_, "no_seat", "not_registered", 404)
        if mine.status != "registered":
            why = {"waitlisted": "waiting", "offered": "offered"}.get(mine.status, "left")
            return pages.message(lang_, "no_seat", why, 410 if why == "left" else 200)
        return pages.ticket_page(lang_, event, ticket(keyring, event.event_id, mine.registration_id))

    return router
