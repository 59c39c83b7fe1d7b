"""Finished transactional mail loses its personal part after the keep period; nothing else does."""

from __future__ import annotations

import json

import asyncpg
import pytest

from alumni_kit.consent_view import CONSENT_VIEW_MIGRATIONS
from alumni_kit.db import KIT_MIGRATIONS, apply_migrations
from mailer.app import MIGRATIONS
from mailer.retention import purge_finished
from tests.stack import Stack

pytestmark = pytest.mark.real

MAIL = {"kind": "email-verification", "language": "nb", "to_address": "123456@usn.no", "body_text": "link"}


async def test_only_old_finished_requests_are_cleared(stack: Stack, mailer_db: str) -> None:
    conn = await asyncpg.connect(stack.service_dsn("mailer", mailer_db))
    try:
        await apply_migrations(conn, {"kit": KIT_MIGRATIONS, **CONSENT_VIEW_MIGRATIONS, "mailer": MIGRATIONS})
        rows = [
            ("old-sent", "sent", 8),
            ("new-sent", "sent", 1),
            ("old-pending", "pending", 8),
            ("old-skip", "skipped", 30),
        ]
        for event_id, state, days in rows:
            await conn.execute(
                "INSERT INTO transactional (event_id, kind, mail, state, updated_at)"
                " VALUES ($1, 'email-verification', $2::jsonb, $3, now() - make_interval(days => $4))",
                event_id,
                json.dumps(MAIL),
                state,
                days,
            )
        assert await purge_finished(conn, keep_days=7) == 2
        assert await purge_finished(conn, keep_days=7) == 0
        kept = {
            r["event_id"]: json.loads(r["mail"]) for r in await conn.fetch("SELECT event_id, mail FROM transactional")
        }
    finally:
        await conn.close()
    assert kept["old-sent"] == kept["old-skip"] == {"kind": "email-verification", "language": "nb"}
    assert kept["new-sent"] == kept["old-pending"] == MAIL
