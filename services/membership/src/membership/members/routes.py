"""Membership's staff read API: a member by id, and a faculty-scoped, paged search (see search.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from alumni_kit.auth import StaffPrincipal
from alumni_kit.http import STAFF_REFUSALS, people_reader, refusals
from alumni_kit.runtime import ServiceRuntime
from membership.members import repository, search
from membership.profile.rules import Interest
from usn_schemas.member import MemberStatus
from usn_schemas.vocabulary import UUID_PATTERN, Faculty
from usn_schemas.volunteer import OfferType

Year = Annotated[int | None, Query(ge=1950, le=2100)]


def members_router(runtime: ServiceRuntime, staff: Callable[..., StaffPrincipal]) -> APIRouter:
    router = APIRouter(prefix="/members", tags=["members"], responses=STAFF_REFUSALS)
    staff = people_reader(staff)

    @router.get("/{member_id}", responses=refusals(404))
    async def get_member(
        member_id: Annotated[str, Path(pattern=UUID_PATTERN)], who: StaffPrincipal = Depends(staff)
    ) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            exists = await repository.member_exists(conn, member_id)
            found = await search.members_in_scope(conn, [member_id], who.visible_faculties(), who.unscoped)
        if not exists:
            raise HTTPException(404, "no such member")
        if not found:
            raise HTTPException(403, f"this member is not in your faculty ({who.faculty})")
        return found[0]

    @router.get("")
    async def search_members(
        faculty: Faculty | None = None,
        programme_code: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        graduation_year: Year = None,
        graduation_year_from: Year = None,
        graduation_year_to: Year = None,
        campus: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        interest: Annotated[list[Interest] | None, Query(max_length=10)] = None,
        offer: Annotated[list[OfferType] | None, Query(max_length=10)] = None,
        status: MemberStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        who: StaffPrincipal = Depends(staff),
    ) -> dict[str, Any]:
        if faculty is not None and not who.may_see(faculty):
            raise HTTPException(403, f"you may search your own faculty only ({who.faculty})")
        year_from, year_to = _years(graduation_year, graduation_year_from, graduation_year_to)
        query = search.MemberSearch(
            faculties=(faculty,) if faculty else who.visible_faculties(),
            programme_code=programme_code,
            year_from=year_from,
            year_to=year_to,
            campus=campus,
            interests=tuple(interest or ()),
            offers=tuple(offer or ()),
            status=status,
            limit=limit,
            offset=offset,
            without_programmes=who.unscoped and faculty is None,
        )
        async with runtime.pool.acquire() as conn:
            total, items = await search.search(conn, query)
        return {"total": total, "limit": limit, "offset": offset, "items": items}

    return router


def _years(exact: int | None, first: int | None, last: int | None) -> tuple[int | None, int | None]:
    """`graduation_year` is shorthand for from = to = that year; it cannot be combined with a range."""
    if exact is not None and (first is not None or last is not None):
        raise HTTPException(422, "give graduation_year, or graduation_year_from/graduation_year_to, not both")
    if exact is not None:
        return exact, exact
    if first is not None and last is not None and first > last:
        raise HTTPException(422, f"graduation_year_from ({first}) is after graduation_year_to ({last})")
    return first, last
