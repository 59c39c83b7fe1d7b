"""Membership's staff read API: a member by id, and a faculty-scoped search."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from alumni_kit.auth import StaffPrincipal
from alumni_kit.runtime import ServiceRuntime
from membership import repository

FacultyParam = Literal["HH", "TNM", "HS", "HIU"]
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def members_router(runtime: ServiceRuntime, staff: Callable[..., StaffPrincipal]) -> APIRouter:
    router = APIRouter(prefix="/members", tags=["members"])

    @router.get("/{member_id}")
    async def get_member(
        member_id: Annotated[str, Path(pattern=UUID_PATTERN)], who: StaffPrincipal = Depends(staff)
    ) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            found = await repository.get_members_by_id(conn, [member_id])
        if not found:
            raise HTTPException(404, "no such member")
        member = found[0]
        if not any(who.may_see(p["faculty"]) for p in member["programmes"]):
            raise HTTPException(403, f"this member is not in your faculty ({who.faculty})")
        return member

    @router.get("")
    async def search_members(
        faculty: FacultyParam | None = None,
        programme_code: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        graduation_year: Annotated[int | None, Query(ge=1950, le=2100)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        who: StaffPrincipal = Depends(staff),
    ) -> dict[str, Any]:
        if faculty is not None and not who.may_see(faculty):
            raise HTTPException(403, f"you may search your own faculty only ({who.faculty})")
        faculties = (faculty,) if faculty else who.visible_faculties()
        query = repository.MemberQuery(faculties, programme_code, graduation_year, limit, offset)
        async with runtime.pool.acquire() as conn:
            total, ids = await repository.search_member_ids(conn, query)
            items = await repository.get_members_by_id(conn, ids)
        return {"total": total, "limit": limit, "offset": offset, "items": items}

    return router
