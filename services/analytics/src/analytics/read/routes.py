"""The read API: `GET /analytics/<figure>` (JSON) and `GET /analytics/<figure>.csv` for every
answer in answers.py, staff bearer token; comms and aab see every faculty, an AK/AT hers.

Pinned for other tools: `GET /analytics/members?as_of=<RFC 3339>&faculty=<code>` →
`{"as_of": …, "total": n, "by_faculty": {"HH": n, …}}`, a suppressed cell `null`.
Thin: parameters and access in scope.py, figures in answers.py.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response

from alumni_kit.auth import StaffPrincipal
from alumni_kit.db import Conn
from alumni_kit.http import answers_in, refusals
from analytics.read.answers import ANSWERS, Ask
from analytics.read.repository import EngagementRule
from analytics.read.scope import ForbiddenError, ParameterError, parse_as_of, scope_for
from analytics.read.views import Json

AsOfParam = Annotated[
    str | None,
    Query(description="RFC 3339 date-time with an offset (e.g. 2026-06-30T12:00:00Z): the figures as they stood then"),
]
FacultyParam = Annotated[str | None, Query(description="HH, TNM, HS or HIU; an AK/AT may ask only for her own")]


# How long a caller waits before asking again for an as_of moment while another is built.
AS_OF_RETRY_SECONDS = 30
# How often a reader chooses its generation again when the one chosen was dropped meanwhile.
_CHOICES = 3


class BusyError(Exception):
    """Another as_of moment is being built (one at a time): a 429 with Retry-After."""


@dataclass(frozen=True)
class ReadSource:
    """Where the read side finds its generation: the wiring (app.py) gives the write side's functions."""

    pool: Callable[[], asyncpg.Pool]
    live_schema: Callable[[Conn], Awaitable[str]]
    # Keeps the chosen generation from being dropped for the transaction; False if it was
    # dropped between choosing it and holding it (choose again).
    hold: Callable[[Conn, str], Awaitable[bool]]
    # Builds (or finds) the generation for a moment; raises ParameterError("as_of") for a moment
    # with nothing before it, BusyError while another moment is being built.
    as_of_schema: Callable[[Conn, datetime], Awaitable[str]]
    engagement: EngagementRule


@asynccontextmanager
async def asking(source: ReadSource, who: StaffPrincipal, as_of: str | None, faculty: str | None) -> AsyncIterator[Ask]:
    """The checked parameters and a connection reading the right generation, or the 4xx."""
    now = datetime.now(UTC)
    try:
        moment = parse_as_of(as_of, now)
        scope = scope_for(who, faculty)
    except ParameterError as exc:
        raise HTTPException(422, [{"loc": ["query", exc.field], "msg": exc.msg}]) from None
    except ForbiddenError as exc:
        raise HTTPException(403, str(exc)) from None
    async with source.pool().acquire() as conn:
        for _ in range(_CHOICES):
            try:
                schema = await (source.live_schema(conn) if moment is None else source.as_of_schema(conn, moment))
            except ParameterError as exc:
                raise HTTPException(422, [{"loc": ["query", exc.field], "msg": exc.msg}]) from None
            except BusyError as exc:
                raise HTTPException(429, str(exc), headers={"Retry-After": str(AS_OF_RETRY_SECONDS)}) from None
            # One snapshot for every query of the answer: a rebuild's switch cannot fall in between,
            # and the generation is held: dropping an old one (as_of_keep, a rebuild) waits for it.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                if await source.hold(conn, schema):
                    yield Ask(conn, schema, scope, moment, now, source.engagement)
                    return
        raise HTTPException(503, "the figures were being replaced; try again", headers={"Retry-After": "1"})


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _label(item: dict[str, Any]) -> str:
    """A list item's name in the CSV: its identifying text fields (campaign id, channel and purpose, …)."""
    keys = ("campaign_id", "faculty", "kind", "channel", "purpose", "month", "share_bp")
    return "/".join(str(item[k]) for k in keys if k in item and item[k] is not None) or "?"


def flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every figure of an answer as (dotted name, value): the CSV's rows."""
    if isinstance(data, dict):
        return [row for k, v in data.items() for row in flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(data, list):
        rows: list[tuple[str, Any]] = []
        for item in data:
            name = f"{prefix}[{_label(item)}]" if isinstance(item, dict) else prefix
            rows += flatten({k: v for k, v in item.items()} if isinstance(item, dict) else item, name)
        return rows
    return [(prefix, data)]


def as_csv(answer: Json) -> str:
    """`figure,value` rows, a suppressed cell empty; `as_of` first (the moment of every row)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["figure", "value"])
    for name, value in flatten(answer):
        writer.writerow([name, _cell(value)])
    return out.getvalue()


# A staff route's refusals, and 429 while another as_of moment is being built.
READ_REFUSALS = refusals(401, 403, 422, 429)
CSV_ANSWER = answers_in("text/csv", {200: "The figures as `figure,value` rows; a suppressed cell is empty."})


def read_router(source: ReadSource, staff: Callable[..., StaffPrincipal]) -> APIRouter:
    router = APIRouter(prefix="/analytics", tags=["analytics"])
    for name, answer in ANSWERS.items():
        _add(router, source, staff, name, answer)
    return router


def _add(
    router: APIRouter,
    source: ReadSource,
    staff: Callable[..., StaffPrincipal],
    name: str,
    answer: Callable[[Ask], Awaitable[Json]],
) -> None:
    doc = (answer.__doc__ or "").strip() or f"The {name} figures."

    async def as_json(
        as_of: AsOfParam = None, faculty: FacultyParam = None, who: StaffPrincipal = Depends(staff)
    ) -> Json:
        async with asking(source, who, as_of, faculty) as ask:
            return await answer(ask)

    async def as_csv_file(
        as_of: AsOfParam = None, faculty: FacultyParam = None, who: StaffPrincipal = Depends(staff)
    ) -> Response:
        async with asking(source, who, as_of, faculty) as ask:
            got = await answer(ask)
        filename = name.replace("/", "-")
        return Response(
            as_csv(got),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="analytics-{filename}.csv"'},
        )

    slug = name.replace("/", "_")
    router.add_api_route(
        f"/{name}", as_json, methods=["GET"], responses=READ_REFUSALS, summary=doc, name=f"analytics_{slug}"
    )
    router.add_api_route(
        f"/{name}.csv",
        as_csv_file,
        methods=["GET"],
        responses={**CSV_ANSWER, **READ_REFUSALS},
        summary=f"{doc} (CSV)",
        name=f"analytics_{slug}_csv",
        response_class=Response,
    )
