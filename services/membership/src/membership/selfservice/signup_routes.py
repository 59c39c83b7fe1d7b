"""The sign-up pages and API: GET/POST /signup, GET/POST /signup/confirm.

POST /signup takes a browser form (answers with a page) or JSON (answers with
JSON). The link in the mail opens a page with a button: only its POST acts, so
a mail scanner that follows every link confirms nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from alumni_kit.db import Conn
from membership.selfservice import signup
from membership.web import forms, sessions
from membership.web.flow import Handler, Web, refused_form
from membership.web.i18n import TEXT
from membership.web.link_pages import Prompt, link_routes
from membership.web.pages import SECURITY_HEADERS, Language, language, message, page

log = logging.getLogger(__name__)


def signup_router(web: Web) -> APIRouter:
    router = APIRouter(tags=["sign-up"])
    router.add_api_route("/signup", _signup_form(web), methods=["GET"], include_in_schema=False)
    router.add_api_route(
        "/signup",
        _request_signup(web),
        methods=["POST"],
        status_code=202,
        openapi_extra=forms.form_or_json(signup.SignupForm),
        responses={**forms.page_or_json(202, "Requested; a verification mail is on its way."), **forms.FORM_REFUSALS},
    )
    link_routes(router, web, "confirm-signup", _ask_confirmation, _confirm, _signed_in)
    return router


def _rules(web: Web) -> signup.SignupRules:
    s = web.settings
    return signup.SignupRules(
        re.compile(s.student_number_pattern), s.student_mail_domain, s.signup_link_hours, s.rejected_application_days
    )


def _form_page(web: Web, lang: Language, status: int = 200, **context: Any) -> Response:
    other = "en" if lang == "nb" else "nb"
    context.setdefault("form", {})
    return page("signup.html", lang, status, other_lang=other, domain=web.settings.student_mail_domain, **context)


def _signup_form(web: Web) -> Handler:
    async def signup_form(lang: str | None = None) -> Response:
        return _form_page(web, language(lang))

    return signup_form


def _request_signup(web: Web) -> Handler:
    async def request_signup(request: Request) -> Response:
        api = forms.is_json(request)
        data: dict[str, Any] = {}
        try:
            data = await forms.read_body(request)
            form = forms.parse(signup.SignupForm, data)
            async with web.runtime.pool.acquire() as conn:
                done = await signup.request_signup(conn, form, _rules(web), web.links)
        except (forms.FlowError, forms.InvalidFieldsError) as exc:
            return refused_form(exc, data, api, partial(_form_page, web))
        log.info("sign-up requested; verification mail queued")
        if api:
            body = {"signup_id": done.signup_id, "status": "awaiting-verification", "sent_to": done.sent_to}
            return JSONResponse(body, status_code=202, headers=SECURITY_HEADERS)
        t = TEXT[form.language]
        text = t["signup_sent"].format(address=done.sent_to, hours=web.settings.signup_link_hours)
        return message(form.language, t["signup_sent_title"], [text], 202)

    return request_signup


async def _ask_confirmation(conn: Conn, signup_id: str, _nonce: str, t: Mapping[str, str]) -> Prompt:
    row = await signup.get_signup(conn, signup_id)
    if row is None:
        raise forms.FlowError(404, "unknown_link_text")
    if row["confirmed_at"] is not None:
        raise forms.FlowError(409, "used_link_text")
    name = f"{row['given_name']} {row['family_name']}"
    text = t["signup_confirm_text"].format(student_number=row["student_number"], name=name, email=row["private_email"])
    return Prompt(t["signup_confirm_title"], [text], t["confirm_button"])


async def _confirm(conn: Conn, signup_id: str, _nonce: str) -> str:
    return await signup.confirm_signup(conn, signup_id)


def _signed_in(web: Web, member_id: str, lang: Language) -> Response:
    log.info("sign-up confirmed: a pre-alumni member registered")
    t = TEXT[lang]
    csrf = sessions.csrf_token(member_id, web.signer)  # she is logged in now: the page shows her menu
    response = message(
        lang, t["signup_done_title"], [t["signup_done"]], link="/profile", link_text=t["to_profile"], csrf=csrf
    )
    web.start_session(response, member_id)
    return response
