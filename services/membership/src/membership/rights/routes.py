"""Data-subject rights over HTTP: the member's own export and erasure, and staff's.

Member pages use the session cookie (+ CSRF field on the erasure form); staff
routes the bearer token: comms for any member, an AK for members of her
faculty (erasure and export are requests a member may make by letter).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import Response
from pydantic import Field

from alumni_kit.auth import StaffPrincipal, TokenSigner
from alumni_kit.http import BODY_REFUSALS, STAFF_REFUSALS, refusals
from alumni_kit.runtime import ServiceRuntime
from alumni_kit.text_input import TextInput
from membership.members.repository import member_exists
from membership.rights import export
from membership.rights.erasure import Erased, NoSuchMemberError, Requester, erase_member, standing
from membership.rights.inbound import forget_consumed_quietly
from membership.web import pages, sessions
from usn_schemas.vocabulary import UUID_PATTERN

log = logging.getLogger(__name__)

TEXTS = {
    "nb": {
        "erase_title": "Slett meg",
        "erase_lines": "Alt plattformen har om deg blir slettet: medlemskap, profil, samtykker, e-poster."
        " Dette kan ikke angres. Du kan bli medlem igjen senere.",
        "erase_confirm": "Ja, slett alt om meg",
        "erase_button": "Slett meg",
        "erase_must_confirm": "Kryss av for at du vil slette alt om deg.",
        "erased_title": "Du er slettet",
        "erased_lines": "Opplysningene om deg er slettet fra alle tjenester i alumniplattformen.",
        "export_unavailable": "En av tjenestene svarte ikke. Prøv igjen om litt.",
    },
    "en": {
        "erase_title": "Erase me",
        "erase_lines": "Everything the platform holds about you is erased: membership, profile, consents, e-mails."
        " This cannot be undone. You may become a member again later.",
        "erase_confirm": "Yes, erase everything about me",
        "erase_button": "Erase me",
        "erase_must_confirm": "Tick the box to confirm that you want everything about you erased.",
        "erased_title": "You are erased",
        "erased_lines": "What the alumni platform held about you is erased from all its services.",
        "export_unavailable": "One of the services did not answer. Please try again shortly.",
    },
}


class StaffErasure(TextInput):
    reason: str = Field(min_length=3, max_length=500)


class RightsDeps:
    """What the routes need, gathered once in create_app."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        signer: TokenSigner,
        pepper: bytes,
        sections: dict[str, export.Section],
        services: dict[str, str],
        group: str,
    ) -> None:
        self.runtime, self.signer, self.pepper = runtime, signer, pepper
        self.sections, self.services = sections, services
        self.group = group

    async def export(self, member_id: str) -> dict[str, Any]:
        async with self.runtime.pool.acquire() as conn:
            if not await member_exists(conn, member_id):
                raise HTTPException(404, "no such member")
            return await export.gather(conn, member_id, self.sections, self.services, self.signer)

    async def erase(self, member_id: str, who: Requester, actor: str | None, reason: str | None) -> Erased:
        async with self.runtime.pool.acquire() as conn, conn.transaction():
            erased = await erase_member(conn, self.pepper, member_id, who, actor, reason)
        if erased.student_number is not None:
            s = self.runtime.settings
            graduated = s.topic_prefix + "graduated"
            await forget_consumed_quietly(
                s.kafka_bootstrap, graduated, f"{self.group}.graduated", erased.student_number, self.runtime.pool
            )
        return erased


def member_rights_router(deps: RightsDeps) -> APIRouter:
    router = APIRouter(tags=["member self-service"], responses=sessions.NOT_LOGGED_IN)
    member = sessions.session_dependency(deps.signer)

    @router.get("/profile/export", responses=refusals(404, 503))
    async def my_export(member_id: str = Depends(member)) -> Response:
        try:
            document = await deps.export(member_id)
        except export.ExportUnavailableError as exc:
            log.warning("access export unavailable: %s", exc)  # which service: for operators, not members
            raise HTTPException(503, TEXTS["en"]["export_unavailable"]) from None
        return _download(document)

    @router.get("/profile/erase", responses=sessions.HTML_PAGE)
    async def erase_page(request: Request, member_id: str = Depends(member)) -> Response:
        lang = pages.language(request.query_params.get("lang"))
        return _erase_form(lang, member_id, deps.signer)

    @router.post("/profile/erase", responses={**sessions.HTML_PAGE, **sessions.MEMBER_FORM, **refusals(404)})
    async def erase_me(request: Request, member_id: str = Depends(member)) -> Response:
        form = await request.form()
        sessions.check_csrf(member_id, form.get(sessions.CSRF_FIELD), deps.signer)
        lang = pages.language(form.get("lang"))
        if form.get("confirm") != "yes":
            return _erase_form(lang, member_id, deps.signer, error=TEXTS[lang]["erase_must_confirm"], status=422)
        try:
            await deps.erase(member_id, "member", None, None)
        except NoSuchMemberError:
            raise HTTPException(404, "no such member") from None
        response = pages.message(lang, TEXTS[lang]["erased_title"], [TEXTS[lang]["erased_lines"]])
        sessions.end_session(response)
        return response

    return router


def staff_rights_router(deps: RightsDeps, staff: Callable[..., StaffPrincipal]) -> APIRouter:
    router = APIRouter(prefix="/members", tags=["members"], responses=STAFF_REFUSALS)

    @router.get("/{member_id}/export", responses=refusals(404, 503))
    async def staff_export(
        member_id: Annotated[str, Path(pattern=UUID_PATTERN)], who: StaffPrincipal = Depends(staff)
    ) -> Response:
        await _may_act_for(deps, who, member_id)
        try:
            return _download(await deps.export(member_id))
        except export.ExportUnavailableError as exc:
            raise HTTPException(503, str(exc)) from None

    @router.post("/{member_id}/erasure", status_code=202, responses={**BODY_REFUSALS, **refusals(404)})
    async def staff_erasure(
        member_id: Annotated[str, Path(pattern=UUID_PATTERN)], body: StaffErasure, who: StaffPrincipal = Depends(staff)
    ) -> dict[str, Any]:
        await _may_act_for(deps, who, member_id, erased_ok=True)
        try:
            erased = await deps.erase(member_id, "staff", who.subject, body.reason)
        except NoSuchMemberError:
            raise HTTPException(404, "no such member") from None
        return {"member_id": erased.member_id, "erased_at": erased.erased_at.isoformat(), "already": erased.already}

    return router


async def _may_act_for(deps: RightsDeps, who: StaffPrincipal, member_id: str, erased_ok: bool = False) -> None:
    """comms: anyone; ak: members with a degree of her faculty; at and aab: never (read-only roles)."""
    if who.role not in ("comms", "ak"):
        raise HTTPException(403, f"role {who.role} may not act on a member's rights requests")
    async with deps.runtime.pool.acquire() as conn:
        her = await standing(conn, member_id)
    if not her.exists and not (erased_ok and her.erased):
        raise HTTPException(404, "no such member")
    if her.exists and not any(who.may_see(f) for f in her.faculties) and who.role != "comms":
        raise HTTPException(403, f"this member is not in your faculty ({who.faculty})")


def _erase_form(
    lang: pages.Language, member_id: str, signer: TokenSigner, error: str | None = None, status: int = 200
) -> Response:
    return pages.page("erase.html", lang, status, texts=TEXTS, csrf=sessions.csrf_token(member_id, signer), error=error)


def _download(document: dict[str, Any]) -> Response:
    body = json.dumps(document, ensure_ascii=False, indent=2, default=str)
    return Response(
        body,
        media_type="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="usn-alumni-my-data.json"',
            "Cache-Control": "no-store",
        },
    )
