"""Access (GDPR art. 15): everything the platform holds about one member, as one JSON document.

Membership adds its own sections, then asks every other service for its part
(`GET /internal/members/{id}/export`, with a service token). If any service
does not answer, the export fails with 503 rather than silently missing a part.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx

from alumni_kit.access_export import as_json
from alumni_kit.auth import TokenSigner, issue_service_token
from alumni_kit.db import Conn

Section = Callable[[Conn, str], Awaitable[Any]]


class ExportUnavailableError(Exception):
    """A service holding part of the data did not answer; try again later."""


async def member_section(conn: Conn, member_id: str) -> dict[str, Any] | None:
    member = await conn.fetchrow("SELECT * FROM members WHERE member_id = $1", member_id)
    if member is None:
        return None
    programmes = await conn.fetch(
        "SELECT programme_code, degree_level, programme_name, faculty, campus, graduation_date, credits"
        " FROM programmes WHERE member_id = $1 ORDER BY graduation_date",
        member_id,
    )
    return {**as_json(dict(member)), "programmes": [as_json(dict(p)) for p in programmes]}


async def gather(
    conn: Conn,
    member_id: str,
    sections: dict[str, Section],
    services: dict[str, str],
    signer: TokenSigner,
) -> dict[str, Any]:
    """The whole export; `sections` are membership's own, `services` name → base URL of the others."""
    document: dict[str, Any] = {"member_id": member_id, "generated_at": datetime.now().astimezone().isoformat()}
    document["membership"] = {name: as_json(await section(conn, member_id)) for name, section in sections.items()}
    token = issue_service_token(signer, "membership", ttl_seconds=60)
    async with httpx.AsyncClient(timeout=15.0) as client:
        for name, base_url in services.items():
            document[name] = await _fetch(client, f"{base_url.rstrip('/')}/internal/members/{member_id}/export", token)
    return document


async def _fetch(client: httpx.AsyncClient, url: str, token: str) -> Any:
    try:
        response = await client.get(url, headers={"Authorization": f"Bearer {token}"})
    except httpx.TransportError as exc:
        raise ExportUnavailableError(f"{url.split('/internal')[0]} did not answer ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise ExportUnavailableError(f"{url.split('/internal')[0]} answered {response.status_code}")
    return response.json()
