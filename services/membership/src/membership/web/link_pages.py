"""The page behind a link in an e-mail (sign-up, application, log-in): GET shows a button, only POST acts.

A mail scanner that follows every link thus confirms nothing. Both answer a bad
link with a page: forged, altered or made for another flow → 403, expired → 410;
the flow's own checks add unknown → 404 and used → 409.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response

from alumni_kit.auth import ExpiredTokenError, InvalidTokenError
from alumni_kit.db import Conn
from membership.selfservice.links import PATHS, Purpose
from membership.web.flow import Handler, Web
from membership.web.forms import FlowError
from membership.web.i18n import TEXT
from membership.web.pages import Language, language, message
from membership.web.sessions import refuse_cross_site

T = TypeVar("T")


@dataclass(frozen=True)
class Prompt:
    """What the link's page asks: a heading, its lines and the button's label."""

    title: str
    lines: list[str]
    button: str


# (connection, subject, nonce, the page's words) → the prompt, or FlowError when the link cannot act.
Ask = Callable[[Conn, str, str, Mapping[str, str]], Awaitable[Prompt]]
# (connection, subject, nonce) → what the answer needs, or FlowError.
Act = Callable[[Conn, str, str], Awaitable[T]]
# (web, what the act returned, language) → the page; runs once the connection is back in the pool.
Answer = Callable[["Web", T, Language], Response]


def link_routes(router: APIRouter, web: Web, purpose: Purpose, ask: Ask, act: Act[T], answer: Answer[T]) -> None:
    """GET and POST on the link's path (links.PATHS)."""
    path = PATHS[purpose]
    router.add_api_route(path, _show(web, purpose, ask), methods=["GET"], include_in_schema=False)
    router.add_api_route(path, _act(web, purpose, act, answer), methods=["POST"], include_in_schema=False)


def _show(web: Web, purpose: Purpose, ask: Ask) -> Handler:
    async def show(token: str = "", lang: str | None = None) -> Response:
        lang_ = language(lang)
        try:
            subject, nonce = _claims(web, purpose, token)
            async with web.runtime.pool.acquire() as conn:
                prompt = await ask(conn, subject, nonce, TEXT[lang_])
        except FlowError as exc:
            return _refusal_page(exc, lang_)
        return message(
            lang_,
            prompt.title,
            prompt.lines,
            form_action=PATHS[purpose],
            form_fields={"token": token, "lang": lang_},
            button=prompt.button,
        )

    return show


def _act(web: Web, purpose: Purpose, act: Act[T], answer: Answer[T]) -> Handler:
    async def act_on_link(request: Request) -> Response:
        refuse_cross_site(request)
        form = await request.form()
        lang = language(form.get("lang"))
        try:
            subject, nonce = _claims(web, purpose, str(form.get("token", "")))
            async with web.runtime.pool.acquire() as conn:
                done = await act(conn, subject, nonce)
        except FlowError as exc:
            return _refusal_page(exc, lang)
        return answer(web, done, lang)

    return act_on_link


def _claims(web: Web, purpose: Purpose, token: str) -> tuple[str, str]:
    """(subject, nonce), or FlowError: expired → 410, forged/altered/another kind → 403."""
    try:
        return web.links.claims(purpose, token)
    except ExpiredTokenError:
        raise FlowError(410, "expired_link") from None
    except InvalidTokenError:
        raise FlowError(403, "bad_link") from None


# Headings for refusals met on a link's page; the text is the error's own key.
_HEADINGS = {403: "bad_link", 404: "unknown_link", 409: "used_link", 410: "expired_link"}
# A refusal that is no fault of the link: the sign-up's student number is a member already.
_KEY_HEADINGS = {"already_member": "conflict_title"}
_EXPLAINED = {"bad_link": "bad_link_text", "expired_link": "expired_link_text"}


def _refusal_page(exc: FlowError, lang: Language) -> Response:
    t = TEXT[lang]
    heading = t[_KEY_HEADINGS.get(exc.key) or _HEADINGS.get(exc.status, "conflict_title")]
    text = t[_EXPLAINED[exc.key]] if exc.key in _EXPLAINED else exc.text(lang)
    return message(lang, heading, [text], exc.status)
