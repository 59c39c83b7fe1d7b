"""The member-facing pages: preference centre, double opt-in confirmation and
RFC 8058 one-click unsubscribe. No cookies and no login: each page is reached
by a signed link, and the token travels in the form, so there is no session to
steal or forge."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from alumni_kit.auth import ExpiredTokenError, InvalidTokenError
from alumni_kit.http import SECURITY_HEADERS, Responses, answers_in, refusals
from alumni_kit.outbox import add_to_outbox
from alumni_kit.pages import Pages
from alumni_kit.pages import language as choose_language
from alumni_kit.runtime import ServiceRuntime
from consent import ledger, mails, subjects
from consent.i18n import TEXT
from consent.ledger import FactRequest
from consent.links import Links
from consent.metrics import ConsentMetrics
from consent.notices import Language, NoticeBook, NoticeRef
from consent.preferences import UnknownChoiceError, parse_choices, plan_save
from consent.settings import ConsentSettings
from consent.subjects import Subject
from usn_schemas.consent import CHANNELS
from usn_schemas.ids import new_id

log = logging.getLogger(__name__)
PAGES = Pages(Path(__file__).parent / "templates", TEXT)
page = PAGES.page


class ErasedMemberError(Exception):
    """Membership has no key for her any more: she was erased."""


@dataclass(frozen=True)
class Web:
    runtime: ServiceRuntime
    links: Links
    notices: NoticeBook
    settings: ConsentSettings
    metrics: ConsentMetrics


def message(lang: Language, heading: str, lines: list[str], status: int = 200, **extra: Any) -> HTMLResponse:
    """The kit's message page; a link here always leads back to her preferences."""
    if extra.get("link"):
        extra.setdefault("link_id", "to-preferences")
        extra.setdefault("link_text", TEXT[lang]["to_preferences"])
    return PAGES.message(lang, heading, lines, status, **extra)


def link_error(web: Web, page_name: str, exc: InvalidTokenError, lang: Language) -> HTMLResponse:
    """Expired → 410 Gone; forged, altered or of another kind → 403. Nothing is recorded."""
    t = TEXT[lang]
    expired = isinstance(exc, ExpiredTokenError)
    web.metrics.refused_links.labels(page_name, "expired" if expired else "invalid").inc()
    if expired:
        return message(lang, t["expired_link"], [t["expired_link_text"]], 410)
    return message(lang, t["bad_link"], [t["bad_link_text"]], 403)


PAGE = answers_in("text/html", {200: "The page."})
# What a page behind a member's link answers when the link cannot act (link_error, _unknown_member).
LINK_PAGES = answers_in(
    "text/html",
    {403: "A forged or altered link.", 404: "No such member (unknown, or erased).", 410: "The link has expired."},
)
# A posted form with a choice that is not on it (plain text: no page offers it), or too large a body.
FORM_REFUSALS = answers_in("text/plain", {422: "A choice that is not on the form."}) | refusals(413)
ONE_CLICK = answers_in(
    "text/plain",
    {
        200: "Unsubscribed (or nothing to unsubscribe).",
        400: "Not the RFC 8058 body List-Unsubscribe=One-Click.",
        403: "A forged or altered link.",
        410: "The link has expired.",
    },
) | refusals(413, 422)

# RFC 8058: a mail client's one-click POST carries exactly this form field.
ONE_CLICK_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {"List-Unsubscribe": {"const": "One-Click"}},
                    "required": ["List-Unsubscribe"],
                }
            }
        },
    }
}


def form_body(extra_fields: bool) -> dict[str, Any]:
    """`openapi_extra`: a page's form, with the link's token and the language (the preference
    centre adds one `channel:purpose` checkbox field per choice)."""
    fields = {"token": {"type": "string"}, "lang": {"type": "string", "enum": ["nb", "en"]}}
    schema = {"type": "object", "properties": fields, "required": ["token"], "additionalProperties": extra_fields}
    return {"requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": schema}}}}


def web_router(web: Web) -> APIRouter:
    router = APIRouter(tags=["member pages"], include_in_schema=True)

    # Pages: the 200 and link refusals are HTML; refusals of the request itself (413, 422) stay JSON.
    def add(path: str, handler: Handler, method: str, responses: Responses, **extra: Any) -> None:
        router.add_api_route(path, handler, methods=[method], responses=PAGE | responses, **extra)

    add("/preferences", _show_preferences(web), "GET", LINK_PAGES)
    add("/preferences", _save_preferences(web), "POST", LINK_PAGES | FORM_REFUSALS, openapi_extra=form_body(True))
    add("/preferences/confirm", _show_confirmation(web), "GET", LINK_PAGES)
    add("/preferences/confirm", _confirm(web), "POST", LINK_PAGES | FORM_REFUSALS, openapi_extra=form_body(False))
    add("/unsubscribe/{token}", _unsubscribe_page(web), "GET", LINK_PAGES)
    # Plain text for a mail client; its refusals of the request itself (413, 422) are JSON.
    router.add_api_route(
        "/unsubscribe/{token}",
        _one_click_unsubscribe(web),
        methods=["POST"],
        responses=ONE_CLICK,
        openapi_extra=ONE_CLICK_BODY,
    )
    return router


Handler = Callable[..., Awaitable[Response]]


# ---- preference centre ---------------------------------------------------------------------------------------


def _show_preferences(web: Web) -> Handler:
    async def show_preferences(token: str = "", lang: str | None = None) -> Response:
        try:
            member_id, may_give = web.links.preferences_member(token)
        except InvalidTokenError as exc:
            return link_error(web, "preferences", exc, choose_language(lang))
        async with web.runtime.pool.acquire() as conn:
            subject = await subjects.get(conn, member_id)
            if subject is None:
                return _unknown_member(choose_language(lang))
            language = choose_language(lang, subject.language)
            return await _render_preferences(web, conn, subject, token, language, [], may_give)

    return show_preferences


def _save_preferences(web: Web) -> Handler:
    async def save_preferences(request: Request) -> Response:
        form = await request.form()
        token, lang = str(form.get("token", "")), choose_language(form.get("lang"))
        boxes = [(k, str(v)) for k, v in form.multi_items() if k not in ("token", "lang")]
        try:
            member_id, may_give = web.links.preferences_member(token)
            wanted = parse_choices(boxes, web.notices.purposes)
        except InvalidTokenError as exc:
            return link_error(web, "preferences", exc, lang)
        except UnknownChoiceError as exc:
            return PlainTextResponse(str(exc), status_code=422, headers=SECURITY_HEADERS)
        try:
            return await _save(web, member_id, may_give, wanted, token, lang)
        except ErasedMemberError:
            # Erased at membership a moment ago (her key is gone); her erasure reaches us next.
            return _unknown_member(lang)

    return save_preferences


async def _save(web: Web, member_id: str, may_give: bool, wanted: Any, token: str, lang: Language) -> Response:
    """Record the choices, ask for a confirmation where due, and show the centre again."""
    async with web.runtime.pool.acquire() as conn:
        async with conn.transaction():
            subject = await subjects.get(conn, member_id)
            if subject is None:
                return _unknown_member(lang)
            plan = plan_save(
                member_id,
                await ledger.current(conn, member_id),
                wanted,
                has_email=subject.email is not None,
                email_verified=subject.email_verified_at is not None,
                notices=web.notices,
                language=lang,
                may_give=may_give,
            )
            outcome = await ledger.record(conn, plan.record)
            if plan.needs_confirmation:
                await _request_confirmation(web, conn, subject, plan.needs_confirmation, lang)
            await subjects.set_language(conn, member_id, lang)
        web.metrics.recorded("preference-centre", outcome)
        if plan.needs_confirmation:
            web.metrics.mails.labels("consent-confirmation").inc()
        log.info("preferences saved: %d facts, %d awaiting opt-in", len(outcome.recorded), len(plan.needs_confirmation))
        t = TEXT[lang]
        notes = [t["saved"], t["saved_changes"].format(n=len(outcome.recorded)) if outcome.recorded else ""]
        if plan.needs_confirmation:
            notes.append(t["confirm_sent"].format(topics=_titles(web, plan.needs_confirmation, lang)))
        return await _render_preferences(web, conn, subject, token, lang, [n for n in notes if n], may_give)


async def _request_confirmation(web: Web, conn: Any, subject: Subject, purposes: list[str], lang: Language) -> None:
    nonce, ttl = new_id(), web.settings.confirmation_link_hours * 3600
    expires = datetime.now(UTC) + timedelta(seconds=ttl)
    shown = [web.notices.get(p, lang).sha256 for p in purposes]
    await subjects.add_pending_optin(
        conn, nonce, subject.member_id, purposes, shown, web.notices.version, lang, expires, subject.email or ""
    )
    url = web.links.confirmation(subject.member_id, nonce, ttl, lang)
    seal = (await web.runtime.keyring.current({subject.member_id})).get(subject.member_id)
    if seal is None:
        raise ErasedMemberError(subject.member_id)
    titles = _titles_list(web, purposes, lang)
    await add_to_outbox(conn, [mails.confirmation(subject, lang, titles, url, expires, seal)])


async def _render_preferences(
    web: Web, conn: Any, subject: Subject, token: str, lang: Language, status: list[str], may_give: bool
) -> HTMLResponse:
    current = await ledger.current(conn, subject.member_id)
    awaiting = await subjects.awaiting_confirmation(conn, subject.member_id)
    rows = []
    for purpose in web.notices.purposes:
        notice = web.notices.get(purpose, lang)
        given_here = {c: current.get((c, purpose)) == "given" for c in CHANNELS}
        channels = [
            {
                "name": f"{channel}:{purpose}",
                "label": TEXT[lang][channel],
                "checked": given_here[channel],
                # A ticked box always stays enabled: a disabled one is not submitted, which would withdraw it.
                "disabled": not given_here[channel]
                and ((channel == "email" and subject.email is None) or not may_give),
                "awaiting": channel == "email" and purpose in awaiting and current.get((channel, purpose)) != "given",
            }
            for channel in CHANNELS
        ]
        rows.append({"purpose": purpose, "title": notice.title, "text": notice.text, "channels": channels})
    return page(
        "preferences.html",
        lang,
        token=token,
        other_lang="en" if lang == "nb" else "nb",
        name=subject.given_name,
        has_email=subject.email is not None,
        rows=rows,
        notes=status,
        may_give=may_give,
    )


def _titles_list(web: Web, purposes: list[str], lang: Language) -> list[str]:
    return [web.notices.get(p, lang).title.lower() for p in purposes]


def _titles(web: Web, purposes: list[str], lang: Language) -> str:
    return ", ".join(_titles_list(web, purposes, lang))


def _unknown_member(lang: Language) -> HTMLResponse:
    t = TEXT[lang]
    return message(lang, t["unknown_link"], [t["unknown_link_text"]], 404)


# ---- double opt-in ---------------------------------------------------------------------------------------------


def _show_confirmation(web: Web) -> Handler:
    """GET shows a button; only its POST records. Mail scanners that follow every
    link in a message (to check it) must not be able to give consent."""

    async def show_confirmation(token: str = "", lang: str | None = None) -> Response:
        language = choose_language(lang)
        try:
            member_id, nonce = web.links.confirmation_claims(token)
        except InvalidTokenError as exc:
            return link_error(web, "confirm", exc, language)
        async with web.runtime.pool.acquire() as conn:
            pending = await subjects.pending_optin(conn, nonce, member_id)
        t = TEXT[language]
        if pending is None:
            return _unknown_member(language)
        if pending["confirmed_at"] is not None:
            return message(
                language, t["confirmed_title"], [t["already_confirmed"]], link=_prefs(web, member_id, language)
            )
        return message(
            language,
            t["confirm_title"],
            [t["confirm_text"].format(topics=_titles(web, list(pending["purposes"]), language))],
            form_action="confirm",
            form_fields={"token": token, "lang": language},
            button=t["confirm_button"],
        )

    return show_confirmation


def _confirm(web: Web) -> Handler:
    async def confirm(request: Request) -> Response:
        form = await request.form()
        token, language = str(form.get("token", "")), choose_language(form.get("lang"))
        try:
            member_id, nonce = web.links.confirmation_claims(token)
        except InvalidTokenError as exc:
            return link_error(web, "confirm", exc, language)
        t = TEXT[language]
        async with web.runtime.pool.acquire() as conn, conn.transaction():
            # The member's row first, as erasure and the ledger lock it: one order, no deadlock.
            subject = await subjects.lock(conn, member_id)
            pending = await subjects.lock_pending_optin(conn, nonce)
            if subject is None or pending is None or pending["member_id"] != member_id:
                return _unknown_member(language)
            if not subjects.same_address(pending, subject):  # the address changed: this click proves nothing
                return _unknown_member(language)
            topics = _titles(web, list(pending["purposes"]), language)
            if pending["confirmed_at"] is not None:  # a replayed link: nothing new is recorded
                return message(
                    language, t["confirmed_title"], [t["already_confirmed"]], link=_prefs(web, member_id, language)
                )
            version = pending["notice_version"] or web.notices.version
            requests = [
                FactRequest(
                    member_id=member_id,
                    channel="email",
                    purpose=purpose,
                    state="given",
                    source="preference-centre",
                    method="double-opt-in",
                    notice=NoticeRef(version, sha),  # the text she saw when she ticked the box
                )
                for purpose, sha in zip(pending["purposes"], pending["notices"], strict=True)
            ]
            outcome = await ledger.record(conn, requests)
            await subjects.confirm_optin(conn, nonce, member_id)
        web.metrics.recorded("double-opt-in", outcome)
        log.info("double opt-in confirmed: %d facts", len(outcome.recorded))
        return message(
            language,
            t["confirmed_title"],
            [t["confirmed_text"].format(topics=topics)],
            link=_prefs(web, member_id, language),
        )

    return confirm


def _prefs(web: Web, member_id: str, lang: Language, may_give: bool = True) -> str:
    return web.links.preferences(member_id, web.settings.preference_link_days * 86400, lang, may_give)


# ---- RFC 8058 one-click unsubscribe --------------------------------------------------------------------------


async def _withdraw(web: Web, token: str) -> tuple[str, str, bool]:
    """Withdraw e-mail for the token's purpose; (member, purpose, member still known). Raises InvalidTokenError."""
    # Any purpose the token names is withdrawn, configured or not any more (art. 7(3)).
    member_id, purpose = web.links.unsubscribe_claims(token)
    request = FactRequest(
        member_id=member_id,
        channel="email",
        purpose=purpose,
        state="withdrawn",
        source="one-click-unsubscribe",
        method="rfc8058-one-click",
    )
    async with web.runtime.pool.acquire() as conn, conn.transaction():
        outcome = await ledger.record(conn, [request])
    web.metrics.recorded("one-click-unsubscribe", outcome)
    return member_id, purpose, not outcome.unknown_members


def _one_click_unsubscribe(web: Web) -> Handler:
    async def one_click_unsubscribe(token: str, request: Request) -> Response:
        form = await request.form()
        if form.get("List-Unsubscribe") != "One-Click":
            return PlainTextResponse(
                "expected the RFC 8058 body List-Unsubscribe=One-Click", status_code=400, headers=SECURITY_HEADERS
            )
        try:
            _, _, known = await _withdraw(web, token)
        except ExpiredTokenError:
            web.metrics.refused_links.labels("unsubscribe", "expired").inc()
            return PlainTextResponse("this unsubscribe link has expired", status_code=410, headers=SECURITY_HEADERS)
        except InvalidTokenError:
            # Which check failed is not said: that would help someone forging links.
            web.metrics.refused_links.labels("unsubscribe", "invalid").inc()
            return PlainTextResponse("this unsubscribe link is not valid", status_code=403, headers=SECURITY_HEADERS)
        answer = "unsubscribed" if known else "nothing to unsubscribe: no such member"
        return PlainTextResponse(answer, headers=SECURITY_HEADERS)

    return one_click_unsubscribe


def _unsubscribe_page(web: Web) -> Handler:
    async def unsubscribe_page(token: str, lang: str | None = None) -> Response:
        language = choose_language(lang)
        try:
            member_id, purpose, known = await _withdraw(web, token)
        except InvalidTokenError as exc:
            return link_error(web, "unsubscribe", exc, language)
        t = TEXT[language]
        if not known:
            return message(language, t["unsubscribed_title"], [t["erased_text"]])
        topic = web.notices.get(purpose, language).title.lower() if purpose in web.notices.purposes else purpose
        return message(
            language,
            t["unsubscribed_title"],
            [t["unsubscribed_text"].format(topic=topic)],
            link=_prefs(web, member_id, language, may_give=False),
        )

    return unsubscribe_page
