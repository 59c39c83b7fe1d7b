"""Access export (art. 15) of what sign-up, applications and login hold about a member."""

from __future__ import annotations

from typing import Any

from alumni_kit.db import Conn
from membership.members import repository


async def export_signup(conn: Conn, member_id: str) -> dict[str, Any]:
    signups = await conn.fetch(
        "SELECT signup_id::text, student_number, private_email, given_name, family_name, language, requested_at,"
        " confirmed_at FROM signups WHERE member_id = $1",
        member_id,
    )
    applications = await conn.fetch(
        "SELECT application_id::text, given_name, family_name, email, category, faculty, justification,"
        " policy_version, status, applied_at, verified_at, decided_at, decision_reason, decision_policy_version"
        " FROM applications WHERE member_id = $1",
        member_id,
    )
    logins = await conn.fetch(
        "SELECT issued_at, expires_at, used_at FROM login_links WHERE member_id = $1 ORDER BY issued_at", member_id
    )
    return {
        "sign_ups": [dict(r) for r in signups],
        "applications": [dict(r) for r in applications],
        "login_links": [dict(r) for r in logins],
        "history": await repository.member_history(conn, member_id),
    }
