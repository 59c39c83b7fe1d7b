"""What each read route answers: the repository's raw counts shaped by views.py, for one
generation and moment. The routes (JSON and CSV) and the dashboard page share these."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from alumni_kit.db import Conn
from analytics.read import repository, views
from analytics.read.scope import Scope
from analytics.read.views import Json


@dataclass(frozen=True)
class Ask:
    """One request's figures: where to read them and for whom."""

    conn: Conn
    schema: str  # the generation's schema: live, or built for `as_of`
    scope: Scope
    as_of: datetime | None
    now: datetime
    engagement: repository.EngagementRule

    @property
    def at(self) -> datetime:
        return self.as_of or self.now


async def members(ask: Ask) -> Json:
    return views.members(await repository.members(ask.conn, ask.schema), ask.scope, ask.as_of, ask.now)


async def growth(ask: Ask) -> Json:
    return views.growth(await repository.growth(ask.conn, ask.schema, ask.at), ask.scope, ask.as_of, ask.now)


def dimension(name: str) -> Callable[[Ask], Awaitable[Json]]:
    async def answer(ask: Ask) -> Json:
        figures = await repository.dimension(ask.conn, ask.schema, name)
        return views.dimension(figures, ask.scope, ask.as_of, ask.now)

    return answer


async def pilot(ask: Ask) -> Json:
    got = views.pilot(await repository.pilot(ask.conn, ask.schema), ask.as_of, ask.now)
    if ask.scope.faculty is None:
        return got
    # An AK/AT sees her faculty's pilot programme; the rest and the total are USN-wide.
    mine = {c: n for c, n in got["pilot"].items() if repository.PILOT_PROGRAMMES[c] == ask.scope.faculty}
    return {"as_of": got["as_of"], "pilot": mine}


async def reach(ask: Ask) -> Json:
    return views.reach(await repository.reach(ask.conn, ask.schema, ask.at), ask.scope, ask.as_of, ask.now)


async def campaigns(ask: Ask) -> Json:
    return views.campaigns(await repository.campaigns(ask.conn, ask.schema), ask.scope, ask.as_of, ask.now)


async def events(ask: Ask) -> Json:
    return views.events(await repository.events(ask.conn, ask.schema, ask.at), ask.scope, ask.as_of, ask.now)


async def volunteering(ask: Ask) -> Json:
    return views.volunteering(await repository.volunteering(ask.conn, ask.schema), ask.scope, ask.as_of, ask.now)


async def engagement(ask: Ask) -> Json:
    figures = await repository.engagement(ask.conn, ask.schema, ask.at, ask.engagement)
    return views.engagement(figures, ask.scope, ask.as_of, ask.now)


async def evu(ask: Ask) -> Json:
    members_cell = (await members(ask))["total"]
    figures = await repository.evu(ask.conn, ask.schema, ask.at)
    return views.evu(figures, members_cell, ask.scope, ask.as_of, ask.now)


async def value(ask: Ask) -> Json:
    """The value model on the caller's scope: the same suppressed cells the other routes show."""
    evu_json = await evu(ask)
    engagement_json = await engagement(ask)
    growth_json = await growth(ask)
    return views.value_model(
        evu_json["members"], evu_json["enrolled"], engagement_json["engaged"], growth_json, ask.as_of, ask.now
    )


# Route name (after /analytics/) -> its answer. The dashboard shows them all.
ANSWERS: dict[str, Callable[[Ask], Awaitable[Json]]] = {
    "members": members,
    "members/growth": growth,
    "members/pilot": pilot,
    **{f"members/by/{name}": dimension(name) for name in (*repository.DIMENSIONS, "status")},
    "reach": reach,
    "campaigns": campaigns,
    "events": events,
    "volunteering": volunteering,
    "engagement": engagement,
    "evu": evu,
    "value": value,
}
