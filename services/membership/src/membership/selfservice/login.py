"""Magic-link login, the part with the database: issue a link, tell its state, use it.

A member gets a signed link valid for `login_link_seconds`; its nonce is a row in
login_links, used at most once. The routes are in login_routes.py.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from pydantic import ConfigDict, EmailStr, Field

from alumni_kit.db import Conn
from alumni_kit.outbox import add_to_outbox
from alumni_kit.text_input import TextInput
from membership.members import publishing
from membership.selfservice import mails
from membership.selfservice.links import Links
from membership.web.forms import FlowError
from usn_schemas.ids import new_id
from usn_schemas.vocabulary import Language

log = logging.getLogger(__name__)
AFTER_LOGIN = "/profile"
# At most this many links per member in LINK_WINDOW: the form cannot be used to flood her inbox.
MAX_LINKS_PER_WINDOW = 5
LINK_WINDOW = timedelta(minutes=15)


class LoginForm(TextInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: EmailStr = Field(max_length=254)
    language: Language = "nb"


_MEMBER = """
SELECT member_id::text, given_name, email FROM members
 WHERE lower(email) = lower($1) ORDER BY created_at LIMIT 1 FOR UPDATE"""
_RECENT = "SELECT count(*) FROM login_links WHERE member_id = $1 AND issued_at > $2"


async def send_link(conn: Conn, form: LoginForm, links: Links, ttl_seconds: int) -> bool:
    """Queue a magic link if a member has this address; whether one was queued stays in here and the log."""
    async with conn.transaction():
        member = await conn.fetchrow(_MEMBER, form.email)
        if member is None:
            return False
        if await conn.fetchval(_RECENT, member["member_id"], datetime.now(UTC) - LINK_WINDOW) >= MAX_LINKS_PER_WINDOW:
            return False
        nonce, expires_at = new_id(), datetime.now(UTC) + timedelta(seconds=ttl_seconds)
        await conn.execute(
            "INSERT INTO login_links (nonce, member_id, expires_at) VALUES ($1, $2, $3)",
            nonce,
            member["member_id"],
            expires_at,
        )
        url = links.make("login", member["member_id"], nonce, ttl_seconds, form.language)
        to = (member["email"], member["given_name"])
        minutes = max(1, ttl_seconds // 60)
        mail = mails.mail(
            "magic-link", mails.LOGIN, form.language, to, url, expires_at, member["member_id"], minutes=minutes
        )
        await add_to_outbox(conn, [await publishing.mail_request(conn, member["member_id"], mail)])
    return True


async def link_state(conn: Conn, nonce: str, member_id: str) -> str:
    """'fresh', 'used' or 'unknown' (never issued, or the member is gone)."""
    used = await conn.fetchrow("SELECT used_at FROM login_links WHERE nonce = $1 AND member_id = $2", nonce, member_id)
    return "unknown" if used is None else ("fresh" if used["used_at"] is None else "used")


async def use_link(conn: Conn, nonce: str, member_id: str) -> None:
    """Mark the link used, or FlowError 409 (used before) / 404 (unknown)."""
    used = await conn.fetchval(
        "UPDATE login_links SET used_at = now() WHERE nonce = $1 AND member_id = $2 AND used_at IS NULL RETURNING 1",
        nonce,
        member_id,
    )
    if used is None:
        raise refusal(await link_state(conn, nonce, member_id))


def refusal(state: str) -> FlowError:
    """Why a link that is not 'fresh' cannot log her in."""
    return FlowError(409, "used_link_text") if state == "used" else FlowError(404, "unknown_link_text")
