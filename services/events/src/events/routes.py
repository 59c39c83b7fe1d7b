"""HTTP routes: the staff API (`/events`, bearer token) and members' registration
(`/events/{id}/registrations`, her signed link of purpose `events`). Thin: the rules are
in rules.py, the flows in lifecycle.py and registrations.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from alumni_kit.auth import ExpiredTokenError, InvalidTokenError, StaffPrincipal, TokenSigner, verify_member_link
from alumni_kit.db import Conn
from alumni_kit.http import BODY_REFUSALS, STAFF_REFUSALS, refusals
from alumni_kit.runtime import ServiceRuntime
from alumni_kit.text_input import TextInput
from events import lifecycle, registrations, repository, rules
from events.checkin.repository import no_shows
from events.forecast.flows import view as forecast_view
from events.lifecycle import InvalidChangeError
from events.metrics import EventsMetrics
from events.registrations import RefusedError
from events.rules import FieldProblem
from usn_schemas.events import EventDefinition
from usn_schemas.ids import MemberId
from usn_schemas.vocabulary import UUID_PATTERN

EventIdPath = Annotated[str, Path(pattern=UUID_PATTERN)]
# Staff who may create and change events (the advisory board reads aggregates only).
EDITOR_ROLES = ("comms", "ak", "at")
LINK_PURPOSE = "events"
_MEMBER_ID: TypeAdapter[str] = TypeAdapter(MemberId)
EventFlow = Callable[[Conn, str, datetime], Awaitable[None]]


class NewEvent(TextInput, EventDefinition):
    """The contract's definition as a request body: U+0000 in any text is a 422 for its field."""


class Created(BaseModel):
    event_id: str


class StatusAnswer(BaseModel):
    event_id: str
    status: str


class MemberLink(TextInput):
    model_config = ConfigDict(extra="forbid")

    member_token: str = Field(min_length=1, max_length=2000)


class Placement(BaseModel):
    status: str
    waitlist_position: int | None


class Done(BaseModel):
    status: str


def _invalid(problems: list[FieldProblem]) -> HTTPException:
    return HTTPException(422, [{"loc": ["body", *p.field.split(".")], "msg": p.msg} for p in problems])


def _refused(exc: RefusedError) -> HTTPException:
    return HTTPException(exc.status, exc.detail)


def _may_edit(who: StaffPrincipal, organiser: str) -> None:
    if who.role not in EDITOR_ROLES or not who.may_see(organiser):
        raise HTTPException(403, f"role {who.role} may not manage events organised by {organiser}")


def _may_read(who: StaffPrincipal, organiser: str) -> None:
    # USN-wide events concern every faculty's staff.
    if organiser != "USN" and not who.may_see(organiser):
        raise HTTPException(403, f"events organised by {organiser} are not in your faculty")


def staff_router(runtime: ServiceRuntime, staff: Callable[..., StaffPrincipal]) -> APIRouter:
    router = APIRouter(prefix="/events", tags=["staff"], responses=STAFF_REFUSALS)

    async def organiser_of(conn: Conn, event_id: str) -> str:
        event = await repository.get_event(conn, event_id)
        if event is None:
            raise HTTPException(404, "no such event")
        return event.organiser

    @router.post("", status_code=201, responses={**BODY_REFUSALS})
    async def create_event(body: NewEvent, who: StaffPrincipal = Depends(staff)) -> Created:
        definition = EventDefinition.model_validate(body.model_dump())
        _may_edit(who, definition.organiser)
        problems = rules.problems_of(definition, datetime.now(UTC))
        if problems:
            raise _invalid(problems)
        async with runtime.pool.acquire() as conn:
            return Created(event_id=await lifecycle.create(conn, definition, who.subject))

    async def transition(event_id: str, who: StaffPrincipal, flow: EventFlow) -> None:
        async with runtime.pool.acquire() as conn, conn.transaction():
            _may_edit(who, await organiser_of(conn, event_id))
            try:
                await flow(conn, event_id, datetime.now(UTC))
            except RefusedError as exc:
                raise _refused(exc) from None

    @router.patch("/{event_id}", responses={**refusals(404, 409), **BODY_REFUSALS})
    async def change(
        event_id: EventIdPath, fields: Annotated[dict[str, Any], Body()], who: StaffPrincipal = Depends(staff)
    ) -> StatusAnswer:
        """Change the fields given (the others stay). A published event's change is published as
        `event-updated`; seats it adds are offered to the first on the waiting list."""
        async with runtime.pool.acquire() as conn, conn.transaction():
            event = await repository.lock_event(conn, event_id.lower())
            if event is None:
                raise HTTPException(404, "no such event")
            _may_edit(who, event.organiser)
            if event.status == "cancelled":
                raise HTTPException(409, "the event is cancelled")
            try:
                checked = NewEvent.model_validate({**event.definition.model_dump(), **fields})
            except ValidationError as exc:
                errors = exc.errors(include_url=False, include_input=False)
                raise HTTPException(422, [{**e, "loc": ["body", *e["loc"]]} for e in errors]) from None
            definition = EventDefinition.model_validate(checked.model_dump())
            _may_edit(who, definition.organiser)
            try:
                await lifecycle.change_event(conn, event, definition, datetime.now(UTC))
            except InvalidChangeError as exc:
                raise _invalid(exc.problems) from None
        return StatusAnswer(event_id=event.event_id, status=event.status)

    @router.post("/{event_id}/publish", responses=refusals(404, 409))
    async def publish(event_id: EventIdPath, who: StaffPrincipal = Depends(staff)) -> StatusAnswer:
        """Opens registration; publishes `event-published`."""
        await transition(event_id.lower(), who, lifecycle.publish_event)
        return StatusAnswer(event_id=event_id.lower(), status="published")

    @router.post("/{event_id}/cancel", responses=refusals(404, 409))
    async def cancel(event_id: EventIdPath, who: StaffPrincipal = Depends(staff)) -> StatusAnswer:
        """Closes registration for good; publishes `event-cancelled`."""
        await transition(event_id.lower(), who, lifecycle.cancel_event)
        return StatusAnswer(event_id=event_id.lower(), status="cancelled")

    @router.get("/{event_id}", responses=refusals(404))
    async def show(event_id: EventIdPath, who: StaffPrincipal = Depends(staff)) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            event = await repository.get_event(conn, event_id.lower())
            if event is None:
                raise HTTPException(404, "no such event")
            _may_read(who, event.organiser)
            counts: dict[str, int] = await repository.counts(conn, event.event_id)
            if datetime.now(UTC) >= event.ends_at:  # no-shows are known once it is over
                counts["no_shows"] = await no_shows(conn, event.event_id)
            forecast = await forecast_view(conn, event)
        return {
            "event_id": event.event_id,
            "status": event.status,
            **event.definition.model_dump(mode="json"),
            "registration_deadline": event.registration_deadline.isoformat(),
            "created_at": event.created_at.isoformat(),
            "published_at": event.published_at.isoformat() if event.published_at else None,
            "cancelled_at": event.cancelled_at.isoformat() if event.cancelled_at else None,
            "counts": counts,
            "forecast": forecast,  # None without a minimum (events/forecast/flows.py)
        }

    return router


MEMBER_REFUSALS = refusals(401, 404, 409, 410)
MemberFlow = Callable[[Conn, str, str, datetime], Awaitable[None]]


def member_router(runtime: ServiceRuntime, signer: TokenSigner, metrics: EventsMetrics) -> APIRouter:
    router = APIRouter(prefix="/events/{event_id}", tags=["members"], responses={**MEMBER_REFUSALS, **BODY_REFUSALS})

    def member_of(link: MemberLink) -> str:
        try:
            claims = verify_member_link(signer, link.member_token, LINK_PURPOSE)
        except ExpiredTokenError:
            raise HTTPException(410, "the link has expired; ask for a new one") from None
        except InvalidTokenError as exc:
            raise HTTPException(401, f"invalid link: {exc}") from None
        member_id = claims.get("sub")
        try:
            return _MEMBER_ID.validate_python(member_id).lower()
        except ValueError:
            raise HTTPException(401, "invalid link: no member") from None

    async def act(event_id: str, link: MemberLink, flow: MemberFlow) -> None:
        member_id = member_of(link)
        async with runtime.pool.acquire() as conn, conn.transaction():
            try:
                await flow(conn, event_id.lower(), member_id, datetime.now(UTC))
            except RefusedError as exc:
                raise _refused(exc) from None

    @router.post("/registrations", status_code=201)
    async def register(event_id: EventIdPath, link: MemberLink) -> Placement:
        """A seat if one is free and nobody waits, else a place on the waiting list; once per member."""
        member_id = member_of(link)
        try:
            async with runtime.pool.acquire() as conn:  # one statement, committing by itself
                placed = await registrations.register(conn, event_id.lower(), member_id, datetime.now(UTC))
        except RefusedError as exc:
            metrics.registrations.labels(str(exc.status)).inc()
            raise _refused(exc) from None
        metrics.registrations.labels(placed.status).inc()
        return Placement(status=placed.status, waitlist_position=placed.waitlist_position)

    @router.post("/registrations/cancel")
    async def cancel(event_id: EventIdPath, link: MemberLink) -> Done:
        """She leaves: her seat (offered to the first on the list), her place on the list, or her offer."""
        await act(event_id, link, registrations.cancel)
        return Done(status="cancelled")

    @router.post("/offer/accept")
    async def accept(event_id: EventIdPath, link: MemberLink) -> Done:
        await act(event_id, link, registrations.accept)
        return Done(status="registered")

    @router.post("/offer/decline")
    async def decline(event_id: EventIdPath, link: MemberLink) -> Done:
        """She declines; the seat goes to the next in line."""
        await act(event_id, link, registrations.decline)
        return Done(status="cancelled")

    return router
