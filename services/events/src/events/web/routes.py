"""The pages behind the links in the events mails: GET shows, only POST acts.

`/events/{id}/register?token=…` (the invitation's and confirmation's link) shows the
event and a button; the POST registers her (a seat or a place on the list), as
`POST /events/{id}/registrations` does. `/events/{id}/offer?token=…` (the offer's
link) shows the held seat with *accept* and *decline*. `/events/{id}/withdraw?token=…`
(the confirmation's, reminder's and update's link) shows what she holds (a seat, a place
on the list, an offer) and one button; the POST cancels it, as
`POST /events/{id}/registrations/cancel` does. A mail scanner that follows every link
thus registers, answers and cancels nothing. The token is her member link of purpose `events`;
the form carries it back (no cookie, no session: a cross-site form post could do no
more than the link itself, which the poster would need).

Every refusal is a page of its own: forged link 403, expired link 410, no such event
404, cancelled 410, deadline passed 410, already registered / waiting / left 409.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from pydantic import TypeAdapter
from starlette.datastructures import FormData

from alumni_kit.auth import ExpiredTokenError, InvalidTokenError, TokenSigner, verify_member_link
from alumni_kit.db import Conn
from alumni_kit.pages import Pages, language
from alumni_kit.runtime import ServiceRuntime
from events import registrations, repository
from events.mail import texts as mail_texts
from events.registrations import RefusedError
from events.repository import Event, Registration
from events.web import repository as web_queries
from events.web.links import PURPOSE, Links
from events.web.texts import TEXT
from usn_schemas.ids import MemberId
from usn_schemas.vocabulary import UUID_PATTERN, Language

EventIdPath = Annotated[str, Path(pattern=UUID_PATTERN)]
_MEMBER_ID: TypeAdapter[str] = TypeAdapter(MemberId)
PAGES = Pages(FsPath(__file__).parent / "templates", TEXT)


class RefusalPageError(Exception):
    """A page that says why the link cannot act: `key` names its heading and line in TEXT."""

    def __init__(self, status: int, key: str, line: str | None = None, **values: str) -> None:
        super().__init__(key)
        self.status, self.key, self.line, self.values = status, key, line or f"{key}_line", values


def _when(at: datetime, lang: Language) -> str:
    return mail_texts.when_nb(at) if lang == "nb" else mail_texts.when_en(at)


def refusal_page(exc: RefusalPageError, lang: Language) -> HTMLResponse:
    t = TEXT[lang]
    return PAGES.message(lang, t[exc.key], [t[exc.line].format(**exc.values)], exc.status)


def _member(signer: TokenSigner, token: str) -> str:
    try:
        claims = verify_member_link(signer, token, PURPOSE)
    except ExpiredTokenError:
        raise RefusalPageError(410, "expired_link") from None
    except InvalidTokenError:
        raise RefusalPageError(403, "bad_link") from None
    try:
        return _MEMBER_ID.validate_python(claims.get("sub")).lower()
    except ValueError:
        raise RefusalPageError(403, "bad_link") from None


def _open_event(event: Event | None, now: datetime, lang: Language) -> Event:
    """The event if one may still register for it; else the page that says why."""
    event = _shown(event)
    if now >= event.registration_deadline or now >= event.starts_at:
        raise RefusalPageError(410, "deadline_passed", title=event.definition.title,
                               deadline=_when(event.registration_deadline, lang))  # fmt: skip
    return event


async def _position(conn: Conn, mine: Registration) -> str:
    return str(await web_queries.waitlist_position(conn, mine.event_id, mine.arrival))


async def _already(conn: Conn, mine: Registration) -> RefusalPageError:
    if mine.status == "registered":
        return RefusalPageError(409, "already")
    if mine.status == "waitlisted":
        return RefusalPageError(409, "already", "already_waiting_line", position=await _position(conn, mine))
    if mine.status == "offered":
        return RefusalPageError(409, "already", "already_offered_line")
    return RefusalPageError(409, "closed")


def page_router(runtime: ServiceRuntime, signer: TokenSigner, links: Links) -> APIRouter:
    router = APIRouter(prefix="/events/{event_id}", include_in_schema=False)

    def event_page(event: Event, lang: Language, action: str, token: str, lines: list[str],
                   buttons: list[tuple[str, str, str]]) -> HTMLResponse:  # fmt: skip
        d = event.definition
        return PAGES.page(
            "event.html",
            lang,
            event=d,
            when=_when(d.starts_at, lang),
            where=mail_texts.where(d) if d.address or d.campus else "",
            deadline=_when(event.registration_deadline, lang),
            lines=lines,
            form_action=action,
            token=token,
            buttons=buttons,
        )

    async def answer(lang: Language, work: Callable[[], Awaitable[HTMLResponse]]) -> HTMLResponse:
        try:
            return await work()
        except RefusalPageError as exc:
            return refusal_page(exc, lang)

    @router.get("/register")
    async def show_registration(event_id: EventIdPath, token: str = "", lang: str | None = None) -> HTMLResponse:
        lang_ = language(lang)

        async def work() -> HTMLResponse:
            member_id = _member(signer, token)
            async with runtime.pool.acquire() as conn:
                event = _open_event(await repository.get_event(conn, event_id.lower()), datetime.now(UTC), lang_)
                state = await repository.member_state(conn, event, member_id)
                if state.erased:
                    raise RefusalPageError(403, "bad_link")
                if state.mine is not None:
                    raise await _already(conn, state.mine)
            t = TEXT[lang_]
            return event_page(event, lang_, links.register_path(event.event_id), token, [t["register_line"]],
                              [("register", t["register"], "")])  # fmt: skip

        return await answer(lang_, work)

    @router.post("/register")
    async def register(event_id: EventIdPath, request: Request) -> HTMLResponse:
        _, token, lang_ = await _posted(request)

        async def work() -> HTMLResponse:
            member_id = _member(signer, token)
            now = datetime.now(UTC)
            try:
                async with runtime.pool.acquire() as conn, conn.transaction():
                    placed = await registrations.register(conn, event_id.lower(), member_id, now)
            except RefusedError as exc:
                raise await _refusal(event_id.lower(), member_id, exc, now, lang_) from None
            t = TEXT[lang_]
            if placed.status == "registered":
                return PAGES.message(lang_, t["registered"], [t["registered_line"]], 201)
            line = t["waitlisted_line"].format(position=placed.waitlist_position)
            return PAGES.message(lang_, t["waitlisted"], [line], 201)

        return await answer(lang_, work)

    async def _refusal(
        event_id: str, member_id: str, exc: RefusedError, now: datetime, lang: Language
    ) -> RefusalPageError:
        """The page for a refused registration or answer: read again what the flow refused on."""
        async with runtime.pool.acquire() as conn:
            event = await repository.get_event(conn, event_id)
            _open_event(event, now, lang)  # raises the event's own refusal
            assert event is not None
            state = await repository.member_state(conn, event, member_id)
            if state.erased:
                return RefusalPageError(403, "bad_link")
            if exc.status == 409 and state.mine is not None:
                return await _already(conn, state.mine)
        return RefusalPageError(exc.status if exc.status in (404, 409, 410) else 409, "no_offer")

    @router.get("/offer")
    async def show_offer(event_id: EventIdPath, token: str = "", lang: str | None = None) -> HTMLResponse:
        lang_ = language(lang)

        async def work() -> HTMLResponse:
            member_id = _member(signer, token)
            now = datetime.now(UTC)
            async with runtime.pool.acquire() as conn:
                event = _shown(await repository.get_event(conn, event_id.lower()))
                mine = (await repository.member_state(conn, event, member_id)).mine
            if mine is not None and mine.status == "registered":
                raise RefusalPageError(409, "already")
            if mine is None or mine.status != "offered" or mine.offer_expires_at is None:
                raise RefusalPageError(409, "no_offer")
            until = _when(mine.offer_expires_at, lang_)
            if now >= mine.offer_expires_at:
                raise RefusalPageError(410, "offer_expired", until=until)
            t = TEXT[lang_]
            buttons = [("accept", t["accept"], ""), ("decline", t["decline"], "secondary")]
            return event_page(event, lang_, links.offer_path(event.event_id), token,
                              [t["offer_line"].format(until=until)], buttons)  # fmt: skip

        return await answer(lang_, work)

    @router.post("/offer")
    async def answer_offer(event_id: EventIdPath, request: Request) -> HTMLResponse:
        form, token, lang_ = await _posted(request)

        async def work() -> HTMLResponse:
            member_id = _member(signer, token)
            choice = form.get("choice")
            if choice not in ("accept", "decline"):
                raise RefusalPageError(422, "choose")  # never a decline by default
            accept = choice == "accept"
            flow = registrations.accept if accept else registrations.decline
            now = datetime.now(UTC)
            try:
                async with runtime.pool.acquire() as conn, conn.transaction():
                    await flow(conn, event_id.lower(), member_id, now)
            except RefusedError as exc:
                raise await _offer_refusal(event_id.lower(), member_id, exc, lang_) from None
            t = TEXT[lang_]
            if accept:
                return PAGES.message(lang_, t["registered"], [t["registered_line"]])
            return PAGES.message(lang_, t["declined"], [t["declined_line"]])

        return await answer(lang_, work)

    async def _offer_refusal(event_id: str, member_id: str, exc: RefusedError, lang: Language) -> RefusalPageError:
        async with runtime.pool.acquire() as conn:
            try:
                event = _shown(await repository.get_event(conn, event_id))
            except RefusalPageError as page:
                return page
            mine = (await repository.member_state(conn, event, member_id)).mine
        if mine is not None and mine.status == "registered":
            return RefusalPageError(409, "already")
        if exc.status == 410 and mine is not None and mine.offer_expires_at is not None:
            return RefusalPageError(410, "offer_expired", until=_when(mine.offer_expires_at, lang))
        if exc.status == 410:
            return RefusalPageError(410, "deadline_passed", title=event.definition.title,
                               deadline=_when(event.registration_deadline, lang))  # fmt: skip
        return RefusalPageError(409, "no_offer")

    @router.get("/withdraw")
    async def show_cancel(event_id: EventIdPath, token: str = "", lang: str | None = None) -> HTMLResponse:
        lang_ = language(lang)

        async def work() -> HTMLResponse:
            member_id = _member(signer, token)
            async with runtime.pool.acquire() as conn:
                event = _cancellable(await repository.get_event(conn, event_id.lower()), datetime.now(UTC))
                state = await repository.member_state(conn, event, member_id)
                if state.erased:
                    raise RefusalPageError(403, "bad_link")
                mine = _holding(state.mine)
                t = TEXT[lang_]
                if mine.status == "waitlisted":
                    line, button = t["cancel_waiting_line"].format(position=await _position(conn, mine)), "leave"
                elif mine.status == "offered" and mine.offer_expires_at is not None:
                    line, button = t["cancel_offer_line"].format(until=_when(mine.offer_expires_at, lang_)), "leave"
                else:
                    line, button = t["cancel_seat_line"], "cancel"
            return event_page(event, lang_, links.cancel_path(event.event_id), token, [line],
                              [(button, t[button], "secondary")])  # fmt: skip

        return await answer(lang_, work)

    @router.post("/withdraw")
    async def cancel(event_id: EventIdPath, request: Request) -> HTMLResponse:
        _, token, lang_ = await _posted(request)

        async def work() -> HTMLResponse:
            member_id = _member(signer, token)
            now = datetime.now(UTC)
            async with runtime.pool.acquire() as conn:
                event = _cancellable(await repository.get_event(conn, event_id.lower()), now)
                held = _holding((await repository.member_state(conn, event, member_id)).mine).status
            try:
                async with runtime.pool.acquire() as conn, conn.transaction():
                    await registrations.cancel(conn, event.event_id, member_id, now)
            except RefusedError as exc:
                raise _cancel_refusal(exc, event) from None
            t = TEXT[lang_]
            if held == "registered":
                return PAGES.message(lang_, t["cancelled_mine"], [t["cancelled_mine_line"]])
            return PAGES.message(lang_, t["left_list"], [t["left_list_line"]])

        return await answer(lang_, work)

    return router


async def _posted(request: Request) -> tuple[FormData, str, Language]:
    """The form a member page posted, her signed link's token in it, and the page's language."""
    form = await request.form()
    return form, str(form.get("token", "")), language(form.get("lang"))


def _shown(event: Event | None) -> Event:
    """The event if members may see it (published, not cancelled); else the page that says why."""
    if event is None or event.status == "draft":
        raise RefusalPageError(404, "not_found")
    if event.status == "cancelled":
        raise RefusalPageError(410, "cancelled", title=event.definition.title)
    return event


def _cancellable(event: Event | None, now: datetime) -> Event:
    """The event if a registration for it may still be cancelled; else the page that says why."""
    event = _shown(event)
    if now >= event.starts_at:
        raise RefusalPageError(410, "started", title=event.definition.title)
    return event


def _holding(mine: Registration | None) -> Registration:
    """Her registration if it holds something to give up (a seat, a place, an offer)."""
    if mine is None:
        raise RefusalPageError(404, "not_registered")
    if mine.status not in ("registered", "waitlisted", "offered"):
        raise RefusalPageError(409, "left_already")
    return mine


def _cancel_refusal(exc: RefusedError, event: Event) -> RefusalPageError:
    """The flow refused what the page had seen (a race: she cancelled in another tab, it started)."""
    if exc.status == 404:
        return RefusalPageError(404, "not_registered")
    if exc.status == 410:
        return RefusalPageError(410, "started", title=event.definition.title)
    return RefusalPageError(409, "left_already")
