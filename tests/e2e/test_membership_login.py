"""Magic-link login on the real broker and database: the same answer for members and
strangers, a link that works once and briefly, a session cookie, and log-out."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from alumni_kit.auth import issue_member_link
from tests.e2e.consent_helpers import SIGNER, outbox_drained, page_text, started, token_of
from tests.e2e.graduations import graduation
from tests.e2e.signup_helpers import mails_for, opened_events, tampered
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish

pytestmark = pytest.mark.real

EMAIL = "kari.lie@example.no"


async def _member(stack: Stack, prefix: str, conn: asyncpg.Connection) -> str:
    event = graduation("g-login", "345678", email=EMAIL)
    await publish(stack.bootstrap, prefix + "graduated", [event_bytes(event)])

    async def member_id() -> str | None:
        value = await conn.fetchval("SELECT member_id::text FROM members")
        return str(value) if value else None

    found: str = await eventually(member_id, what="the member")
    return found


async def _link(stack: Stack, prefix: str, service: ServiceProcess, member_id: str, nth: int = 1) -> str:
    mails = await mails_for(stack, prefix, member_id, service, nth)
    assert (mails[-1]["kind"], mails[-1]["to_address"]) == ("magic-link", EMAIL)
    return token_of(mails[-1]["action_url"])


async def test_a_member_logs_in_once_by_magic_link_and_strangers_get_the_same_answer(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    service = await started(membership_service)
    member_id = await _member(stack, topic_prefix, membership_conn)
    async with httpx.AsyncClient(base_url=service.url) as client:
        form = await client.get("/login", params={"lang": "en"})
        assert (form.status_code, 'name="email"' in form.text) == (200, True)
        for_member = await client.post("/login", data={"email": "Kari.Lie@example.no", "language": "en"})
        for_stranger = await client.post("/login", data={"email": "nobody@example.no", "language": "en"})
        assert for_member.status_code == for_stranger.status_code == 200
        assert page_text(for_member) == page_text(for_stranger)
        assert "If you are a member with this address, a login link is on its way" in page_text(for_member)
        api = await client.post("/login", json={"email": "nobody@example.no"})
        assert (api.status_code, api.json()) == (202, {"status": "if-member-link-sent"})

        token = await _link(stack, topic_prefix, service, member_id)
        shown = await client.get("/login/confirm", params={"token": token, "lang": "en"})
        assert shown.status_code == 200
        assert 'id="confirm"' in shown.text
        assert "alumni_session" not in shown.cookies, "a GET (a mail scanner) must not log in"

        # Another site's page posting the link (login CSRF) is refused and uses nothing up.
        for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
            forged = await client.post("/login/confirm", data={"token": token, "lang": "en"}, headers=headers)
            assert forged.status_code == 403
            assert "alumni_session" not in forged.headers.get("set-cookie", "")

        logged_in = await client.post("/login/confirm", data={"token": token, "lang": "en"})
        assert (logged_in.status_code, logged_in.headers["location"]) == (303, "/profile")
        cookie = logged_in.headers["set-cookie"]
        assert "alumni_session=" in cookie
        assert "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower()

        reused = await client.post("/login/confirm", data={"token": token, "lang": "en"})
        assert reused.status_code == 409
        assert "already used" in page_text(reused)
        assert (await client.get("/login/confirm", params={"token": token})).status_code == 409

    await outbox_drained(membership_conn)
    mails = await opened_events(stack, topic_prefix, "transactional-mail-requested", service)
    assert [m["data"]["kind"] for m in mails] == ["magic-link"], "no mail for a stranger"
    assert await membership_conn.fetchval("SELECT count(*) FROM login_links WHERE used_at IS NOT NULL") == 1


async def test_the_session_opens_member_pages_and_log_out_ends_it(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    service = await started(membership_service)
    member_id = await _member(stack, topic_prefix, membership_conn)
    html = {"Accept": "text/html"}
    async with httpx.AsyncClient(base_url=service.url) as client:
        to_login = await client.get("/profile", headers=html)
        assert (to_login.status_code, to_login.headers["location"]) == (303, "/login")
        assert (await client.get("/profile")).status_code == 401

        await client.post("/login", data={"email": EMAIL})
        token = await _link(stack, topic_prefix, service, member_id)
        assert (await client.post("/login/confirm", data={"token": token})).status_code == 303
        profile = await client.get("/profile", headers=html)
        assert profile.status_code == 200
        csrf = profile.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]

        assert (await client.post("/logout", data={"csrf": "forged"})).status_code == 403
        assert (await client.get("/profile", headers=html)).status_code == 200, "a refused log-out keeps the session"
        logged_out = await client.post("/logout", data={"csrf": csrf})
        assert logged_out.status_code == 200
        assert (await client.get("/profile", headers=html)).status_code == 303


async def test_an_expired_a_forged_and_a_foreign_link_do_not_log_in(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    membership_service.env["MEMBERSHIP_LOGIN_LINK_SECONDS"] = "2"
    service = await started(membership_service)
    member_id = await _member(stack, topic_prefix, membership_conn)
    async with httpx.AsyncClient(base_url=service.url) as client:
        await client.post("/login", data={"email": EMAIL, "language": "en"})
        token = await _link(stack, topic_prefix, service, member_id)
        forged = await client.post("/login/confirm", data={"token": tampered(token)})
        assert forged.status_code == 403
        signup_link = issue_member_link(SIGNER, member_id, "confirm-signup", 600, member_id)
        assert (await client.post("/login/confirm", data={"token": signup_link})).status_code == 403
        never_issued = issue_member_link(SIGNER, member_id, "login", 600, "00000000-0000-4000-8000-000000000000")
        assert (await client.post("/login/confirm", data={"token": never_issued})).status_code == 404

        await asyncio.sleep(3)
        expired = await client.post("/login/confirm", data={"token": token, "lang": "en"})
        assert expired.status_code == 410
        assert "expired" in page_text(expired)
        assert (await client.get("/login/confirm", params={"token": token})).status_code == 410
        assert "alumni_session" not in client.cookies

        malformed = await client.post("/login", json={"email": "not an address"})
        assert malformed.status_code == 422

    assert await membership_conn.fetchval("SELECT count(*) FROM login_links WHERE used_at IS NOT NULL") == 0
