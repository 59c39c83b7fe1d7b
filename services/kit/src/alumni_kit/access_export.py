"""Access (GDPR art. 15): each service's part of a member's export, one mechanism for all.

A service lists what it holds as named SQL queries taking the member id as $1;
`export_router` serves them at `GET /internal/members/{id}/export` to callers
with a service token (membership gathers every part into one download).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path

from alumni_kit.db import Conn
from alumni_kit.http import SERVICE_REFUSALS
from alumni_kit.runtime import ServiceRuntime

MEMBER_ID = r"^[0-9a-fA-F-]{36}$"


async def run_queries(conn: Conn, queries: Mapping[str, str], member_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every query's rows for `member_id`, as JSON-ready dicts."""
    return {name: [as_json(dict(row)) for row in await conn.fetch(sql, member_id)] for name, sql in queries.items()}


def export_router(runtime: ServiceRuntime, service: Callable[..., str], queries: Mapping[str, str]) -> APIRouter:
    router = APIRouter(prefix="/internal/members", tags=["internal"], responses=SERVICE_REFUSALS)

    @router.get("/{member_id}/export")
    async def export(
        member_id: Annotated[str, Path(pattern=MEMBER_ID)], caller: str = Depends(service)
    ) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            return {"service": runtime.name, **await run_queries(conn, queries, member_id.lower())}

    return router


def as_json(value: Any) -> Any:
    """Database values as JSON: times ISO 8601, numerics as numbers, jsonb parsed, bytes as hex."""
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
