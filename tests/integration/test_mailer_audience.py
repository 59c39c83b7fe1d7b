"""Audiences on the real database: each key narrows, programme conditions hold for one
programme, and a faculty sender reaches only her faculty's members."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from alumni_kit.consent_view import CONSENT_VIEW_MIGRATIONS
from alumni_kit.db import KIT_MIGRATIONS, apply_migrations
from mailer.app import MIGRATIONS
from mailer.campaigns import resolve_audience, schedule
from usn_schemas.campaign import CampaignRequest

pytestmark = pytest.mark.real

# (member, faculties, programmes as (code, level, campus, faculty, year))
MEMBERS = [
    ("tnm-ba-2012", ["TNM"], [("BSL", "bachelor", "Vestfold", "TNM", 2012)]),
    ("tnm-ma-2020", ["TNM"], [("MSE", "master", "Kongsberg", "TNM", 2020)]),
    ("tnm-ba-2012-hh-ma-2021", ["TNM", "HH"], [
        ("BSL", "bachelor", "Vestfold", "TNM", 2012), ("MPED", "master", "Drammen", "HH", 2021)]),
    ("hh-ba-2019", ["HH"], [("BØL", "bachelor", "Bø", "HH", 2019)]),
    ("hs-ma-2023", ["HS"], [("MSYK", "master", "Drammen", "HS", 2023)]),
]  # fmt: skip


@pytest.fixture
async def db(mailer_conn: asyncpg.Connection) -> asyncpg.Connection:
    await apply_migrations(mailer_conn, {"kit": KIT_MIGRATIONS, **CONSENT_VIEW_MIGRATIONS, "mailer": MIGRATIONS})
    for member_id, faculties, programmes in MEMBERS:
        rows = [{"code": c, "level": lvl, "campus": cmp, "faculty": f, "year": y} for c, lvl, cmp, f, y in programmes]
        await mailer_conn.execute(
            "INSERT INTO members VALUES ($1, 'Kari', 'Nordmann', $1 || '@example.no', $2, $3::jsonb, now())",
            member_id,
            faculties,
            json.dumps(rows),
        )
    return mailer_conn


async def audience(conn: asyncpg.Connection, faculty: str, **keys: object) -> set[str]:
    campaign_id = f"c-{uuid.uuid4().hex[:12]}"
    request = CampaignRequest.model_validate(
        {
            "campaign_id": campaign_id,
            "requested_by": "t",
            "faculty": faculty,
            "purpose": "newsletter",
            "audience": keys,
            "subject": "s",
            "body_markdown": "b",
            "send_at": datetime.now(UTC).isoformat(),
        }
    )
    async with conn.transaction():
        await schedule(conn, request)
        await resolve_audience(conn, campaign_id)
    rows = await conn.fetch("SELECT member_id FROM deliveries WHERE campaign_id = $1", campaign_id)
    return {r[0] for r in rows}


async def test_each_key_narrows_and_one_programme_must_meet_them_all(db: asyncpg.Connection) -> None:
    everyone = {m for m, _, _ in MEMBERS}
    assert await audience(db, "USN") == everyone
    assert await audience(db, "USN", faculties=["HS", "HH"]) == {"tnm-ba-2012-hh-ma-2021", "hh-ba-2019", "hs-ma-2023"}
    assert await audience(db, "USN", degree_levels=["master"], graduation_year_from=2021) == {
        "tnm-ba-2012-hh-ma-2021",
        "hs-ma-2023",
    }
    # A bachelor from 2012 and a master from 2021 are two programmes: "bachelor from 2020 on" matches neither.
    assert await audience(db, "USN", degree_levels=["bachelor"], graduation_year_from=2020) == set()
    assert await audience(db, "USN", campuses=["Drammen"], graduation_year_to=2022) == {"tnm-ba-2012-hh-ma-2021"}
    assert await audience(db, "USN", programme_codes=["BSL", "BØL"]) == {
        "tnm-ba-2012",
        "tnm-ba-2012-hh-ma-2021",
        "hh-ba-2019",
    }


async def test_a_faculty_sender_reaches_only_her_faculty(db: asyncpg.Connection) -> None:
    assert await audience(db, "HH") == {"tnm-ba-2012-hh-ma-2021", "hh-ba-2019"}
    # Asking for another faculty's members does not widen her reach.
    assert await audience(db, "HH", faculties=["TNM"]) == {"tnm-ba-2012-hh-ma-2021"}
    # Her faculty's programme must itself meet the conditions (his TNM bachelor is not HH's).
    assert await audience(db, "HH", degree_levels=["bachelor"]) == {"hh-ba-2019"}
