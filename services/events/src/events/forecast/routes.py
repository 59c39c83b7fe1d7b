"""Staff routes of the forecast: run it now (operators, tests) and the organiser's decision.
Thin: the flows are in forecast/flows.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, ConfigDict

from alumni_kit.auth import StaffPrincipal
from alumni_kit.http import BODY_REFUSALS, STAFF_REFUSALS, refusals
from alumni_kit.runtime import ServiceRuntime
from events import repository
from events.forecast import flows
from events.forecast import repository as forecasts
from events.forecast.flows import Forecasting
from events.registrations import RefusedError
from usn_schemas.vocabulary import UUID_PATTERN

EventIdPath = Annotated[str, Path(pattern=UUID_PATTERN)]
EDITOR_ROLES = ("comms", "ak", "at")


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["confirm", "cancel"]


class Decided(BaseModel):
    event_id: str
    decision: Literal["confirmed", "cancelled"]
    registrations: int


class Ran(BaseModel):
    forecast: int


def _may_edit(who: StaffPrincipal, organiser: str) -> None:
    if who.role not in EDITOR_ROLES or not who.may_see(organiser):
        raise HTTPException(403, f"role {who.role} may not manage events organised by {organiser}")


def forecast_router(
    runtime: ServiceRuntime, staff: Callable[..., StaffPrincipal], forecasting: Forecasting
) -> APIRouter:
    router = APIRouter(prefix="/events", tags=["staff"], responses=STAFF_REFUSALS)

    @router.post("/forecast/run")
    async def run_all(who: StaffPrincipal = Depends(staff)) -> Ran:
        """Forecast every due event now (the daily job's work, at once): communications only."""
        if who.role != "comms":
            raise HTTPException(403, "only communications runs the forecast of every event")
        async with runtime.pool.acquire() as conn:
            return Ran(forecast=await flows.forecast_all(conn, datetime.now(UTC), forecasting))

    @router.post("/{event_id}/forecast", responses=refusals(404, 409))
    async def run_one(event_id: EventIdPath, who: StaffPrincipal = Depends(staff)) -> dict[str, Any]:
        """Forecast this event now; answers the staff view's `forecast` object."""
        now = datetime.now(UTC)
        async with runtime.pool.acquire() as conn:
            event = await repository.get_event(conn, event_id.lower())
            if event is None:
                raise HTTPException(404, "no such event")
            _may_edit(who, event.organiser)
            due = await forecasts.due(conn, now, event.event_id)
            if not due:
                raise HTTPException(409, "nothing to forecast: no minimum, not published, decided or started")
            await flows.forecast_event(conn, due[0], now, forecasting)
            forecasting.metrics.show(await forecasts.standing(conn, now))
            view = await flows.view(conn, event)
        assert view is not None
        return view

    @router.post("/{event_id}/decision", responses={**refusals(404, 409), **BODY_REFUSALS})
    async def decide(event_id: EventIdPath, body: DecisionBody, who: StaffPrincipal = Depends(staff)) -> Decided:
        """The organiser confirms the event or cancels it (the cancellation tells every registrant)."""
        now = datetime.now(UTC)
        async with runtime.pool.acquire() as conn:
            async with conn.transaction():
                event = await repository.lock_event(conn, event_id.lower())
                if event is None:
                    raise HTTPException(404, "no such event")
                _may_edit(who, event.organiser)
                try:
                    count = await flows.decide(conn, event, body.decision, who.subject, now)
                except RefusedError as exc:
                    raise HTTPException(exc.status, exc.detail) from None
            forecasting.metrics.show(await forecasts.standing(conn, now))
        outcome: Literal["confirmed", "cancelled"] = "confirmed" if body.decision == "confirm" else "cancelled"
        return Decided(event_id=event.event_id, decision=outcome, registrations=count)

    return router
