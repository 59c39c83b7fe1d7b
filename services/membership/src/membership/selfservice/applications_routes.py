"""Routes of the application flow.

Applicants: GET /apply (form), POST /applications (form or JSON), GET/POST
/applications/verify (the link in the mail; only POST acts).
Staff (bearer token): GET /applications?status=pending (paged, faculty-scoped),
GET /applications/{id}, POST /applications/{id}/decision.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response

from alumni_kit.auth import FACULTIES, StaffPrincipal
from alumni_kit.db import Conn
from alumni_kit.http import BODY_REFUSALS, STAFF_REFUSALS, refusals
from membership.selfservice import applications
from membership.selfservice.applications import ApplicationStatus, Decision, Policy
from membership.web import forms
from membership.web.flow import Handler, Web, refused_form
from membership.web.i18n import TEXT
from membership.web.link_pages import Prompt, link_routes
from membership.web.pages import SECURITY_HEADERS, Language, language, message, page
from usn_schemas.vocabulary import UUID_PATTERN, Faculty

log = logging.getLogger(__name__)


def policy_of(web: Web) -> Policy:
    s = web.settings
    return Policy(
        s.application_categories, s.eligibility_policy_version, s.application_link_hours, s.rejected_application_days
    )


def applications_router(web: Web, staff: Callable[..., StaffPrincipal]) -> APIRouter:
    router = APIRouter(tags=["applications"])
    router.add_api_route("/apply", _form(web), methods=["GET"], include_in_schema=False)
    router.add_api_route(
        "/applications",
        _apply(web),
        methods=["POST"],
        status_code=202,
        openapi_extra=forms.form_or_json(applications.ApplicationForm),
        responses={**forms.page_or_json(202, "Received; a verification mail is on its way."), **forms.FORM_REFUSALS},
    )
    link_routes(router, web, "verify-application", _ask_verification, _verify, _verified)
    _staff_routes(router, web, staff)
    return router


def _form_page(web: Web, lang: Language, status: int = 200, **context: Any) -> Response:
    context.setdefault("form", {})
    return page(
        "apply.html",
        lang,
        status,
        other_lang="en" if lang == "nb" else "nb",
        policy=web.settings.eligibility_policy_version,
        categories=web.settings.application_categories,
        faculties=FACULTIES,
        max_justification=applications.MAX_JUSTIFICATION,
        **context,
    )


def _form(web: Web) -> Handler:
    async def application_form(lang: str | None = None) -> Response:
        return _form_page(web, language(lang))

    return application_form


def _apply(web: Web) -> Handler:
    async def apply(request: Request) -> Response:
        api = forms.is_json(request)
        data: dict[str, Any] = {}
        try:
            data = await forms.read_body(request)
            form = forms.parse(applications.ApplicationForm, data)
            async with web.runtime.pool.acquire() as conn:
                application_id, address = await applications.apply(conn, form, policy_of(web), web.links)
        except (forms.FlowError, forms.InvalidFieldsError) as exc:
            return refused_form(exc, data, api, partial(_form_page, web))
        log.info("application received; verification mail queued")
        if api:
            body = {"application_id": application_id, "status": "unverified"}
            return JSONResponse(body, status_code=202, headers=SECURITY_HEADERS)
        t = TEXT[form.language]
        return message(form.language, t["apply_sent_title"], [t["apply_sent"].format(address=address)], 202)

    return apply


async def _ask_verification(conn: Conn, application_id: str, _nonce: str, t: Mapping[str, str]) -> Prompt:
    found = await applications.get(conn, application_id)
    if found is None:
        raise forms.FlowError(404, "unknown_link_text")
    if found["status"] != "unverified":
        raise forms.FlowError(409, "used_link_text")
    return Prompt(t["apply_confirm_title"], [t["apply_confirm_text"].format(email=found["email"])], t["confirm_button"])


async def _verify(conn: Conn, application_id: str, _nonce: str) -> None:
    await applications.verify(conn, application_id)


def _verified(_web: Web, _: None, lang: Language) -> Response:
    log.info("application e-mail verified; queued for a decision")
    t = TEXT[lang]
    return message(lang, t["apply_done_title"], [t["apply_done"]])


DECISION = Decision.model_json_schema()
IdParam = Annotated[str, Path(pattern=UUID_PATTERN)]


def _staff_routes(router: APIRouter, web: Web, staff: Callable[..., StaffPrincipal]) -> None:
    @router.get("/applications", responses=STAFF_REFUSALS)
    async def list_applications(
        status: ApplicationStatus = "pending",
        faculty: Faculty | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        who: StaffPrincipal = Depends(staff),
    ) -> Response:
        try:
            applications.may_read(who, faculty)
        except forms.FlowError as exc:
            return forms.api_refusal(exc)
        faculties = (faculty,) if faculty else who.visible_faculties()
        async with web.runtime.pool.acquire() as conn:
            total, items = await applications.queue(conn, status, faculties, limit, offset)
        body = {"total": total, "limit": limit, "offset": offset, "items": items}
        return JSONResponse(_json(body), headers=SECURITY_HEADERS)

    @router.get("/applications/{application_id}", responses={**STAFF_REFUSALS, **refusals(404)})
    async def get_application(application_id: IdParam, who: StaffPrincipal = Depends(staff)) -> Response:
        try:
            applications.may_read(who)
            async with web.runtime.pool.acquire() as conn:
                found = await applications.get(conn, application_id)
            if found is None:
                raise forms.FlowError(404, "staff_unknown")
            applications.may_read(who, found["faculty"])
        except forms.FlowError as exc:
            return forms.api_refusal(exc)
        return JSONResponse(_json(found), headers=SECURITY_HEADERS)

    @router.post(
        "/applications/{application_id}/decision",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": DECISION}}}},
        responses={**STAFF_REFUSALS, **BODY_REFUSALS, **refusals(404, 409)},
    )
    async def decide(application_id: IdParam, request: Request, who: StaffPrincipal = Depends(staff)) -> Response:
        try:
            applications.may_decide(who)
            decision = forms.parse(Decision, await forms.read_body(request))
            async with web.runtime.pool.acquire() as conn:
                decided = await applications.decide(
                    conn, application_id, who, decision, web.settings.eligibility_policy_version
                )
        except (forms.FlowError, forms.InvalidFieldsError) as exc:
            return forms.api_refusal(exc)
        log.info("application decided: %s", decided["status"])
        return JSONResponse(_json(decided), headers=SECURITY_HEADERS)


def _json(value: Any) -> Any:
    """Datetimes as ISO 8601 text (JSONResponse does not encode them)."""
    return jsonable_encoder(value)
