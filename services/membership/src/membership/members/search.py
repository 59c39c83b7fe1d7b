"""Staff search over members, always inside the caller's faculties.

Scope rule: a member is found when at least one of her programmes is in a
faculty the caller may see and that same programme matches the programme,
year and campus filters. What is shown of her is cut to the caller's scope:
an AK/AT sees only the programmes of her own faculty (a member with degrees in
two faculties appears to each faculty's AK with that faculty's degree only).
Her contact details, interests and offers are hers, not a faculty's, and are
shown to anyone who may see her. Members with no programme yet (pre-alumni,
approved applicants) belong to no faculty: only unscoped staff (comms) find
them, when the search does not filter on programmes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from alumni_kit.db import Conn
from membership.members import repository

_MATCHES = """
  FROM members m
 WHERE (EXISTS (SELECT 1 FROM programmes p
                 WHERE p.member_id = m.member_id
                   AND p.faculty = ANY($1::text[])
                   AND ($2::text IS NULL OR p.programme_code = $2)
                   AND ($3::date IS NULL OR p.graduation_date >= $3)
                   AND ($4::date IS NULL OR p.graduation_date < $4)
                   AND ($5::text IS NULL OR lower(p.campus) = lower($5)))
        OR ($9 AND $2::text IS NULL AND $3::date IS NULL AND $4::date IS NULL AND $5::text IS NULL
            AND NOT EXISTS (SELECT 1 FROM programmes p WHERE p.member_id = m.member_id)))
   AND ($6::text[] IS NULL OR EXISTS (SELECT 1 FROM member_interests i
                                       WHERE i.member_id = m.member_id AND i.interest = ANY($6::text[])))
   AND ($7::text[] IS NULL OR EXISTS (SELECT 1 FROM volunteer_offers o
                                       WHERE o.member_id = m.member_id AND o.offer_type = ANY($7::text[])))
   AND ($8::text IS NULL OR m.status = $8)"""

_PAGE = "SELECT m.member_id::text" + _MATCHES + " ORDER BY m.created_at, m.member_id LIMIT $10 OFFSET $11"
_COUNT = "SELECT count(*)" + _MATCHES


@dataclass(frozen=True)
class MemberSearch:
    """Filters combine with AND; the values of one list filter with OR (any of them)."""

    faculties: tuple[str, ...]
    programme_code: str | None = None
    year_from: int | None = None
    year_to: int | None = None  # inclusive
    campus: str | None = None
    interests: tuple[str, ...] = ()
    offers: tuple[str, ...] = ()
    status: str | None = None
    limit: int = 50
    offset: int = 0
    # Unscoped staff (comms) asking for no one faculty: members without a programme count too.
    without_programmes: bool = False

    def args(self) -> tuple[Any, ...]:
        return (
            list(self.faculties),
            self.programme_code,
            date(self.year_from, 1, 1) if self.year_from else None,
            date(self.year_to + 1, 1, 1) if self.year_to else None,
            self.campus,
            list(self.interests) or None,
            list(self.offers) or None,
            self.status,
            self.without_programmes,
        )


async def search(conn: Conn, q: MemberSearch) -> tuple[int, list[dict[str, Any]]]:
    total = await conn.fetchval(_COUNT, *q.args())
    ids = [r["member_id"] for r in await conn.fetch(_PAGE, *q.args(), q.limit, q.offset)]
    return total, await members_in_scope(conn, ids, q.faculties, q.without_programmes)


async def members_in_scope(
    conn: Conn, member_ids: list[str], faculties: tuple[str, ...], without_programmes: bool = False
) -> list[dict[str, Any]]:
    """The members as staff see them, cut to `faculties`; members with nothing in scope are left out
    (those with no programme at all are shown when `without_programmes`)."""
    members = await repository.get_members_by_id(conn, member_ids)
    extras = await _interests_and_offers(conn, member_ids)
    shown = []
    for member in members:
        programmes = [p for p in member["programmes"] if p["faculty"] in faculties]
        if programmes or (without_programmes and not member["programmes"]):
            shown.append(
                {
                    **member,
                    "programmes": programmes,
                    "faculties": sorted({p["faculty"] for p in programmes}),
                    **extras.get(member["member_id"], {"interests": [], "volunteer_offers": []}),
                }
            )
    return shown


async def _interests_and_offers(conn: Conn, member_ids: list[str]) -> dict[str, dict[str, list[str]]]:
    rows = await conn.fetch(
        "SELECT member_id::text, 'interests' AS kind, interest AS value FROM member_interests"
        "  WHERE member_id = ANY($1::uuid[])"
        " UNION ALL SELECT member_id::text, 'volunteer_offers', offer_type FROM volunteer_offers"
        "  WHERE member_id = ANY($1::uuid[]) ORDER BY 1, 2, 3",
        member_ids,
    )
    found: dict[str, dict[str, list[str]]] = {}
    for r in rows:
        found.setdefault(r["member_id"], {"interests": [], "volunteer_offers": []})[r["kind"]].append(r["value"])
    return found
