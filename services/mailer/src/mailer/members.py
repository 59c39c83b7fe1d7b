"""The mailer's copy of members (from member-registered / member-updated) and erasure."""

from __future__ import annotations

import json
from datetime import datetime

import asyncpg

from alumni_kit.consent_view import forget_member
from alumni_kit.consumer import Incoming
from alumni_kit.db import Conn
from usn_schemas.member import MemberErasedV1, MemberRegisteredV1, MemberSnapshot, MemberUpdatedV1

_UPSERT = """
INSERT INTO members AS m (member_id, given_name, family_name, email, faculties, programmes, source_time, language)
SELECT u.id, u.given, u.family, u.email, string_to_array(u.faculties, ','), u.programmes::jsonb, u.at, u.language
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],
              $8::text[])
       AS u(id, given, family, email, faculties, programmes, at, language)
 WHERE NOT EXISTS (SELECT 1 FROM erased_members e WHERE e.member_id = u.id)
ON CONFLICT (member_id) DO UPDATE
   SET given_name = excluded.given_name, family_name = excluded.family_name, email = excluded.email,
       faculties = excluded.faculties, programmes = excluded.programmes, source_time = excluded.source_time,
       language = excluded.language
 WHERE m.source_time <= excluded.source_time
"""


def _programmes(member: MemberSnapshot) -> str:
    return json.dumps(
        [
            {
                "code": p.programme_code,
                "level": p.degree_level,
                "campus": p.campus,
                "faculty": p.faculty,
                "year": p.graduation_date.year,
            }
            for p in member.programmes
        ]
    )


async def on_member(conn: Conn, events: list[Incoming]) -> None:
    """Keep the newest snapshot per member (by event time); erased members stay out."""
    newest: dict[str, tuple[datetime, MemberSnapshot]] = {}
    for incoming in events:
        event = incoming.event
        assert isinstance(event, MemberRegisteredV1 | MemberUpdatedV1)
        seen = newest.get(event.data.member_id)
        if seen is None or seen[0] <= event.time:
            newest[event.data.member_id] = (event.time, event.data)
    rows = [(at, m) for at, m in newest.values()]
    await conn.execute(
        _UPSERT,
        [m.member_id for _, m in rows],
        [m.given_name for _, m in rows],
        [m.family_name for _, m in rows],
        [m.email for _, m in rows],
        [",".join(m.faculties) for _, m in rows],
        [_programmes(m) for _, m in rows],
        [at for at, _ in rows],
        [m.language for _, m in rows],
    )


async def on_member_erased(conn: Conn, events: list[Incoming]) -> None:
    """GDPR art. 17 for the mailer: her copy, consent view, queued mail and the
    addresses on her delivery records go; counts per campaign stay (anonymous)."""
    for incoming in events:
        assert isinstance(incoming.event, MemberErasedV1)
        member_id = incoming.event.data.member_id
        await conn.execute("DELETE FROM members WHERE member_id = $1", member_id)
        await forget_member(conn, member_id)
        await conn.execute(
            "UPDATE deliveries SET state = 'skipped', reason = 'erased' WHERE member_id = $1 AND state = 'pending'",
            member_id,
        )
        await conn.execute("UPDATE deliveries SET address = NULL WHERE member_id = $1", member_id)
        await conn.execute(
            "UPDATE transactional SET state = 'skipped', reason = 'erased' WHERE member_id = $1 AND state = 'pending'",
            member_id,
        )
        # Sent ones too: the stored request holds her address, name and personal links.
        await conn.execute("UPDATE transactional SET mail = '{}'::jsonb WHERE member_id = $1", member_id)
        await conn.execute(
            "INSERT INTO erased_members VALUES ($1, $2) ON CONFLICT DO NOTHING",
            member_id,
            incoming.event.data.erased_at,
        )


async def recipient(conn: Conn, member_id: str) -> asyncpg.Record | None:
    """What a message to the member needs: address, names and faculties (None: no such member)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT member_id, email, given_name, family_name, faculties FROM members WHERE member_id = $1", member_id
    )
    return row
