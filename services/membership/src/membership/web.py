"""The sign-up pages and API: GET/POST /signup, GET/POST /signup/confirm.

POST /signup takes a browser form (answers with a page) or JSON (answers with
JSON). The link in the mail opens a page with a button: only its POST acts, so
a mail scanner that follows every link confirms nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from alumni_kit.auth import ExpiredTokenError, InvalidTokenError, TokenSigner
from alumni_kit.runtime import ServiceRuntime
from membership import sessions, signup
from membership.forms import FlowError, InvalidFieldsError, api_refusal, is_json, parse, read_body
from membership.i18n import TEXT
from membership.links import Links, Purpose
from membership.pages import SECURITY_HEADERS, Language, language, message, page
from membership.settings import MembershipSettings

log = logging.getLogger(__name__)
Handler = Callable[..., Awaitable[Response]]


@dataclass(frozen=True)
class Web:
    runtime: ServiceRuntime
    settings: MembershipSettings
    signer: TokenSigner
    links: Links

    @property
    def secure_cookies(self) -> bool:
        return self.settings.public_base_url.startswith("https://")

    def start_session(self, response: Response, member_id: str) -> None:
        ttl = self.settings.session_hours * 3600
        sessions.start_session(response, member_id, self.signer, ttl, secure=self.secure_cookies)


def link_claims(web: Web, purpose: Purpose, token: str) -> tuple[str, str]:
    """(subject, nonce), or FlowError: expired → 410, forged/altered/another kind → 403."""
    try:
        return web.links.claims(purpose, token)
    except ExpiredTokenError:
        raise FlowError(410, "expired_link") from None
    except InvalidTokenError:
        raise FlowError(403, "bad_link") from None


# Headings for refusals met on a link's page; the text is the error's own key.
_HEADINGS = {403: "bad_link", 404: "unknown_link", 409: "used_link", 410: "expired_link"}
_EXPLAINED = {"bad_link": "bad_link_text", "expired_link": "expired_link_text"}


def refusal_page(exc: FlowError, lang: Language, heading_key: str | None = None) -> Response:
    t = TEXT[lang]
    heading = t[heading_key or _HEADINGS.get(exc.status, "conflict_title")]
    text = t[_EXPLAINED[exc.key]] if exc.key in _EXPLAINED else exc.text(lang)
    return message(lang, heading, [text], exc.status)


def signup_router(web: Web) -> APIRouter:
    router = APIRouter(tags=["sign-up"])
    router.add_api_route("/signup", _signup_form(web), methods=["GET"], include_in_schema=False)
    router.add_api_route("/signup", _request_signup(web), methods=["POST"])
    router.add_api_route("/signup/confirm", _show_confirmation(web), methods=["GET"], include_in_schema=False)
    router.add_api_route("/signup/confirm", _confirm(web), methods=["POST"], include_in_schema=False)
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
        api = is_json(request)
        data: dict[str, Any] = {}
        try:
            data = await read_body(request)
            form = parse(signup.SignupForm, data)
            async with web.runtime.pool.acquire() as conn:
                done = await signup.request_signup(conn, form, _rules(web), web.links)
        except (FlowError, InvalidFieldsError) as exc:
            lang = language(data.get("language"))
            if api:
                return api_refusal(exc)
            problems = exc.problems if isinstance(exc, InvalidFieldsError) else [exc.text(lang)]
            status = 422 if isinstance(exc, InvalidFieldsError) else exc.status
            return _form_page(web, lang, status, form=data, problems=problems)
        log.info("sign-up requested; verification mail queued")
        if api:
            body = {"signup_id": done.signup_id, "status": "awaiting-verification", "sent_to": done.sent_to}
            return JSONResponse(body, status_code=202, headers=SECURITY_HEADERS)
        t = TEXT[form.language]
        text = t["signup_sent"].format(address=done.sent_to, hours=web.settings.signup_link_hours)
        return message(form.language, t["signup_sent_title"], [text], 202)

    return request_signup


def _show_confirmation(web: Web) -> Handler:
    async def show_confirmation(token: str = "", lang: str | None = None) -> Response:
        language_ = language(lang)
        t = TEXT[language_]
        try:
            signup_id, _ = link_claims(web, "confirm-signup", token)
            async with web.runtime.pool.acquire() as conn:
                row = await signup.get_signup(conn, signup_id)
            if row is None:
                raise FlowError(404, "unknown_link_text")
            if row["confirmed_at"] is not None:
                raise FlowError(409, "used_link_text")
        except FlowError as exc:
            return refusal_page(exc, language_)
        name = f"{row['given_name']} {row['family_name']}"
        text = t["signup_confirm_text"].format(
            student_number=row["student_number"], name=name, email=row["private_email"]
        )
        fields = {"token": token, "lang": language_}
        return message(
            language_,
            t["signup_confirm_title"],
            [text],
            form_action="/signup/confirm",
            form_fields=fields,
            button=t["confirm_button"],
        )

    return show_confirmation


def _confirm(web: Web) -> Handler:
    async def confirm(request: Request) -> Response:
        form = await request.form()
        lang = language(form.get("lang"))
        t = TEXT[lang]
        try:
            signup_id, _ = link_claims(web, "confirm-signup", str(form.get("token", "")))
            async with web.runtime.pool.acquire() as conn:
                member_id = await signup.confirm_signup(conn, signup_id)
        except FlowError as exc:
            return refusal_page(exc, lang, "conflict_title" if exc.key == "already_member" else None)
        log.info("sign-up confirmed: a pre-alumni member registered")
        csrf = sessions.csrf_token(member_id, web.signer)  # she is logged in now: the page shows her menu
        response = message(
            lang, t["signup_done_title"], [t["signup_done"]], link="/profile", link_text=t["to_profile"], csrf=csrf
        )
        web.start_session(response, member_id)
        return response

    return confirm
