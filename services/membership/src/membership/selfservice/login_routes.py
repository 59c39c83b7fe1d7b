"""Magic-link login: GET/POST /login, GET/POST /login/confirm, POST /logout.

POST /login answers the same page whether or not the address belongs to a
member, so the form cannot be used to find out who is one. The link's GET shows
a button (mail scanners follow links); its POST starts the session and sends
her to /profile.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from alumni_kit.db import Conn
from membership.selfservice.login import AFTER_LOGIN, LoginForm, link_state, refusal, send_link, use_link
from membership.web import forms, sessions
from membership.web.flow import Handler, Web
from membership.web.i18n import TEXT
from membership.web.link_pages import Prompt, link_routes
from membership.web.pages import SECURITY_HEADERS, Language, language, message, page, redirect

log = logging.getLogger(__name__)


def login_router(web: Web) -> APIRouter:
    router = APIRouter(tags=["login"])
    router.add_api_route("/login", _login_page(web), methods=["GET"], include_in_schema=False)
    router.add_api_route(
        "/login",
        _request_link(web),
        methods=["POST"],
        status_code=202,
        openapi_extra=forms.form_or_json(LoginForm),
        # The same answer whether or not she is a member (a page, or 202 JSON).
        responses={
            **forms.page_or_json(200, "The form again, saying a link was sent if she is a member."),
            **forms.FORM_REFUSALS,
        },
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
        api = forms.is_json(request)
        data: dict[str, Any] = {}
        try:
            data = await forms.read_body(request)
            form = forms.parse(LoginForm, data)
        except forms.InvalidFieldsError as exc:
            return (
                forms.api_refusal(exc)
                if api
                else _page(web, language(data.get("language")), 422, problems=exc.problems)
            )
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
        raise refusal(state)
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
