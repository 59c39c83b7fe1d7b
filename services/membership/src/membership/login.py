"""Magic-link login: GET/POST /login, GET/POST /login/confirm, POST /logout.

POST /login answers the same page whether or not the address belongs to a
member, so the form cannot be used to find out who is one. A member gets a
signed link valid for `login_link_seconds`; its nonce is a row in login_links,
used at most once. The link's GET shows a button (mail scanners follow links);
its POST starts the session and sends her to /profile.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ConfigDict, EmailStr, Field

from alumni_kit.db import Conn
from alumni_kit.outbox import add_to_outbox
from alumni_kit.text_input import TextInput
from membership import mails, publishing, sessions
from membership.forms import (
    FORM_REFUSALS,
    FlowError,
    InvalidFieldsError,
    api_refusal,
    form_or_json,
    is_json,
    page_or_json,
    parse,
    read_body,
)
from membership.i18n import TEXT
from membership.link_pages import Prompt, link_routes
from membership.links import Links
from membership.pages import SECURITY_HEADERS, Language, language, message, page, redirect
from membership.web import Handler, Web
from usn_schemas.ids import new_id

log = logging.getLogger(__name__)
AFTER_LOGIN = "/profile"
# At most this many links per member in LINK_WINDOW: the form cannot be used to flood her inbox.
MAX_LINKS_PER_WINDOW = 5
LINK_WINDOW = timedelta(minutes=15)


class LoginForm(TextInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: EmailStr = Field(max_length=254)
    language: Literal["nb", "en"] = "nb"


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
        raise _refusal(await link_state(conn, nonce, member_id))


def _refusal(state: str) -> FlowError:
    """Why a link that is not 'fresh' cannot log her in."""
    return FlowError(409, "used_link_text") if state == "used" else FlowError(404, "unknown_link_text")


def login_router(web: Web) -> APIRouter:
    router = APIRouter(tags=["login"])
    router.add_api_route("/login", _login_page(web), methods=["GET"], include_in_schema=False)
    router.add_api_route(
        "/login",
        _request_link(web),
        methods=["POST"],
        status_code=202,
        openapi_extra=form_or_json(LoginForm),
        # The same answer whether or not she is a member (a page, or 202 JSON).
        responses={**page_or_json(200, "The form again, saying a link was sent if she is a member."), **FORM_REFUSALS},
    )
    link_routes(router, web, "login", _ask_login, _use, _logged_in)
    router.add_api_route("/logout", _log_out(web), methods=["POST"], include_in_schema=False)
    return router


def _page(web: Web, lang: Language, status: int = 200, **context: Any) -> Response:
    minutes = max(1, web.settings.login_link_seconds // 60)
    return page("login.html", lang, status, other_lang="en" if lang == "nb" else "nb", minutes=minutes, **context)


def _login_page(web: Web) -> Handler:
    async def login_page(lang: str | None = None) -> Response:
        return _page(web, language(lang))

    return login_page


def _request_link(web: Web) -> Handler:
    async def request_link(request: Request) -> Response:
        api = is_json(request)
        data: dict[str, Any] = {}
        try:
            data = await read_body(request)
            form = parse(LoginForm, data)
        except InvalidFieldsError as exc:
            return api_refusal(exc) if api else _page(web, language(data.get("language")), 422, problems=exc.problems)
        async with web.runtime.pool.acquire() as conn:
            sent = await send_link(conn, form, web.links, web.settings.login_link_seconds)
        log.info("login link requested (sent: %s)", sent)
        if api:
            return JSONResponse({"status": "if-member-link-sent"}, status_code=202, headers=SECURITY_HEADERS)
        return _page(web, form.language, sent=True)

    return request_link


async def _ask_login(conn: Conn, member_id: str, nonce: str, t: Mapping[str, str]) -> Prompt:
    state = await link_state(conn, nonce, member_id)
    if state != "fresh":
        raise _refusal(state)
    return Prompt(t["login_confirm_title"], [t["login_confirm_text"]], t["login_confirm_button"])


async def _use(conn: Conn, member_id: str, nonce: str) -> str:
    await use_link(conn, nonce, member_id)
    return member_id


def _logged_in(web: Web, member_id: str, _lang: Language) -> Response:
    log.info("member logged in by magic link")
    response = redirect(AFTER_LOGIN)
    web.start_session(response, member_id)
    return response


def _log_out(web: Web) -> Handler:
    async def log_out(request: Request) -> Response:
        form = await request.form()
        lang = language(form.get("lang"))
        member_id = sessions.session_member(request, web.signer)
        if member_id is not None:
            sessions.check_csrf(member_id, form.get(sessions.CSRF_FIELD), web.signer)
        t = TEXT[lang]
        response = message(lang, t["logged_out_title"], [t["logged_out"]], link="/login", link_text=t["nav_login"])
        sessions.end_session(response)
        return response

    return log_out
