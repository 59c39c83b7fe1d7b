"""Faculty and programme networks: staff create them, members join and leave.

A network belongs to one faculty and, optionally, one programme; a member may
join those of her faculties (and, for a programme network, her programmes).
Staff see a network's members; a member's e-mail address only when she gave
consent for e-mail about networks (the consent view: channel 'email',
purpose 'networks'), her phone only with consent for SMS about networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from alumni_kit.db import Conn
from usn_schemas.ids import new_id

CONSENT_PURPOSE = "networks"


class DuplicateNetworkError(Exception):
    """The faculty already has a network of that name (names compare case-insensitively)."""


@dataclass(frozen=True)
class NewNetwork:
    name: str
    faculty: str
    programme_code: str | None
    external_url: str | None
    created_by: str


_COLUMNS = "n.network_id::text, n.name, n.faculty, n.programme_code, n.external_url, n.created_at"
_COUNTED = f"""
SELECT {_COLUMNS}, (SELECT count(*) FROM network_members nm WHERE nm.network_id = n.network_id) AS member_count
  FROM networks n"""
# Networks open to a member: her faculties, and for programme networks her programmes.
_OPEN_TO = """
EXISTS (SELECT 1 FROM programmes p WHERE p.member_id = $1 AND p.faculty = n.faculty
         AND (n.programme_code IS NULL OR p.programme_code = n.programme_code))"""


async def create(conn: Conn, new: NewNetwork) -> dict[str, Any]:
    try:
        row = await conn.fetchrow(
            "INSERT INTO networks (network_id, name, faculty, programme_code, external_url, created_by)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING network_id::text, name, faculty, programme_code,"
            " external_url, created_at",
            new_id(),
            new.name,
            new.faculty,
            new.programme_code,
            new.external_url,
            new.created_by,
        )
    except asyncpg.UniqueViolationError:
        raise DuplicateNetworkError from None
    assert row is not None
    return {**dict(row), "member_count": 0}


async def list_for_faculties(conn: Conn, faculties: tuple[str, ...], limit: int, offset: int) -> tuple[int, list[Any]]:
    total = await conn.fetchval("SELECT count(*) FROM networks WHERE faculty = ANY($1::text[])", list(faculties))
    rows = await conn.fetch(
        _COUNTED + " WHERE n.faculty = ANY($1::text[]) ORDER BY n.faculty, lower(n.name) LIMIT $2 OFFSET $3",
        list(faculties),
        limit,
        offset,
    )
    return total, [dict(r) for r in rows]


async def get(conn: Conn, network_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(_COUNTED + " WHERE n.network_id = $1", network_id)
    return dict(row) if row else None


_MEMBERS = """
SELECT m.member_id::text, m.given_name, m.family_name, nm.joined_at,
       CASE WHEN e.state = 'given' THEN m.email END AS email,
       CASE WHEN s.state = 'given' THEN m.phone END AS phone
  FROM network_members nm
  JOIN members m USING (member_id)
  LEFT JOIN consent_view e ON e.member_id = m.member_id::text AND e.channel = 'email' AND e.purpose = $2
  LEFT JOIN consent_view s ON s.member_id = m.member_id::text AND s.channel = 'sms' AND s.purpose = $2
 WHERE nm.network_id = $1
 ORDER BY nm.joined_at, m.member_id LIMIT $3 OFFSET $4"""


async def members_of(conn: Conn, network_id: str, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
    """A page of the network's members; contact details only where she consented (see module doc)."""
    total = await conn.fetchval("SELECT count(*) FROM network_members WHERE network_id = $1", network_id)
    rows = await conn.fetch(_MEMBERS, network_id, CONSENT_PURPOSE, limit, offset)
    return total, [dict(r) for r in rows]


async def open_to_member(conn: Conn, member_id: str) -> list[dict[str, Any]]:
    """The networks she may join, each with `joined` (true when she is in it)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS}, EXISTS (SELECT 1 FROM network_members j WHERE j.network_id = n.network_id"
        f" AND j.member_id = $1) AS joined FROM networks n WHERE {_OPEN_TO} ORDER BY n.faculty, lower(n.name)",
        member_id,
    )
    return [dict(r) for r in rows]


async def open_network(conn: Conn, member_id: str, network_id: str) -> dict[str, Any] | None:
    """The network if it is open to her, else None (unknown and not-hers look the same to her)."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM networks n WHERE n.network_id = $2 AND {_OPEN_TO}", member_id, network_id
    )
    return dict(row) if row else None


async def join(conn: Conn, member_id: str, network_id: str) -> bool:
    """True when she was not in it yet."""
    status = await conn.execute(
        "INSERT INTO network_members (network_id, member_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        network_id,
        member_id,
    )
    return str(status).endswith(" 1")


async def leave(conn: Conn, member_id: str, network_id: str) -> bool:
    status = await conn.execute(
        "DELETE FROM network_members WHERE network_id = $1 AND member_id = $2", network_id, member_id
    )
    return str(status).endswith(" 1")


async def export_memberships(conn: Conn, member_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT n.network_id::text, n.name, n.faculty, n.programme_code, nm.joined_at"
        "  FROM network_members nm JOIN networks n USING (network_id) WHERE nm.member_id = $1 ORDER BY nm.joined_at",
        member_id,
    )
    return [{**dict(r), "joined_at": r["joined_at"].isoformat()} for r in rows]
