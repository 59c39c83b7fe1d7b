"""`/profile`: the logged-in member edits her profile (HTML form, or JSON for scripts).

HTML: a form with the session's CSRF field; errors are shown beside their
fields (422) and nothing is saved until every field is right. JSON (send and
accept `application/json`): GET returns the profile, POST changes the fields it
names and keeps the others; errors are a 422 naming each field.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from alumni_kit.auth import TokenSigner
from alumni_kit.http import refusals
from alumni_kit.runtime import ServiceRuntime
from membership.profile import repository as profile
from membership.profile.repository import EmailTakenError, StoredProfile
from membership.profile.rules import INTERESTS, FieldError, Language, UnknownChoiceError, validate_profile
from membership.profile.texts import TEXT, error_text
from membership.web import pages, sessions
from usn_schemas.volunteer import OFFER_TYPES

log = logging.getLogger(__name__)


def profile_router(runtime: ServiceRuntime, signer: TokenSigner) -> APIRouter:
    router = APIRouter(tags=["member pages"])
    logged_in = sessions.session_dependency(signer)

    @router.get("/profile", response_model=None, responses={**sessions.HTML_PAGE, **sessions.NOT_LOGGED_IN})
    async def show_profile(request: Request, lang: str | None = None) -> Response:
        member_id = await logged_in(request)
        stored = await _load(runtime, member_id)
        if _json(request):
            return JSONResponse(_as_json(stored))
        return _page(signer, stored, pages.language(lang, stored.language), _form_of(stored))

    @router.post(
        "/profile", response_model=None, responses={**sessions.HTML_PAGE, **sessions.MEMBER_FORM, **refusals(400)}
    )
    async def save_profile(request: Request) -> Response:
        member_id = await logged_in(request)
        if request.headers.get("content-type", "").startswith("application/json"):
            return await _save_json(runtime, member_id, request)
        await sessions.check_form_csrf(request, member_id, signer)
        form = await request.form()
        submitted = {k: str(form.get(k, "")) for k in ("email", "phone", "employer", "job_title", "language")}
        submitted_lists = {"interests": [str(v) for v in form.getlist("interest")],
                           "offers": [str(v) for v in form.getlist("offer")]}  # fmt: skip
        stored = await _load(runtime, member_id)
        lang = pages.language(submitted["language"], stored.language)
        try:
            outcome = await _validate_and_save(runtime, member_id, submitted, submitted_lists)
        except UnknownChoiceError as exc:
            return PlainTextResponse(str(exc), status_code=422, headers=pages.SECURITY_HEADERS)
        if isinstance(outcome, list):
            errors = {e.field: error_text(e, lang) for e in reversed(outcome)}  # the first error per field wins
            return _page(signer, stored, lang, {**submitted, **submitted_lists}, errors=errors, status=422)
        saved = await _load(runtime, member_id)
        note = TEXT[lang]["profile_saved" if outcome.changed else "profile_unchanged"]
        return _page(signer, saved, saved.language, _form_of(saved), notes=[note])

    return router


def _json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


async def _load(runtime: ServiceRuntime, member_id: str) -> StoredProfile:
    async with runtime.pool.acquire() as conn:
        stored = await profile.load(conn, member_id)
    if stored is None:  # erased while her session cookie lived on
        raise HTTPException(401, "log in first: this member no longer exists")
    return stored


async def _validate_and_save(
    runtime: ServiceRuntime, member_id: str, fields: dict[str, str], lists: dict[str, list[str]]
) -> profile.SaveOutcome | list[FieldError]:
    checked = validate_profile(**fields, interests=lists["interests"], offers=lists["offers"])
    if isinstance(checked, list):
        return checked
    try:
        async with runtime.pool.acquire() as conn, conn.transaction():
            outcome = await profile.save(conn, member_id, checked)
    except EmailTakenError:
        return [FieldError("email", "email_taken")]
    if outcome is None:
        raise HTTPException(401, "log in first: this member no longer exists")
    log.info("profile saved: %d fields changed, %d events", len(outcome.changed), outcome.messages)
    return outcome


async def _save_json(runtime: ServiceRuntime, member_id: str, request: Request) -> Response:
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"detail": "the body is not JSON"}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"detail": "the body must be a JSON object"}, status_code=422)
    current = _as_json(await _load(runtime, member_id))
    merged = {k: body.get(k, current[k]) for k in ("email", "phone", "employer", "job_title", "language")}
    lists = {k: body.get(k, current[k]) for k in ("interests", "offers")}
    if not all(isinstance(v, str | None) for v in merged.values()) or not all(
        isinstance(v, list) and all(isinstance(i, str) for i in v) for v in lists.values()
    ):
        return JSONResponse({"detail": "text fields are strings or null; interests and offers lists of strings"}, 422)
    try:
        outcome = await _validate_and_save(runtime, member_id, {k: v or "" for k, v in merged.items()}, lists)
    except UnknownChoiceError as exc:
        return JSONResponse({"detail": [{"loc": ["body"], "msg": str(exc), "type": "unknown_choice"}]}, 422)
    if isinstance(outcome, list):
        detail = [{"loc": ["body", e.field], "msg": error_text(e, "en"), "type": e.code} for e in outcome]
        return JSONResponse({"detail": detail}, status_code=422)
    return JSONResponse({**_as_json(await _load(runtime, member_id)), "changed": list(outcome.changed)})


def _as_json(p: StoredProfile) -> dict[str, Any]:
    return {
        "member_id": p.member_id,
        "email": p.email,
        "phone": p.phone,
        "employer": p.employer,
        "job_title": p.job_title,
        "language": p.language,
        "interests": sorted(p.interests),
        "offers": [o for o in OFFER_TYPES if o in p.offers],
    }


def _form_of(p: StoredProfile) -> dict[str, Any]:
    return {**_as_json(p), "interests": p.interests, "offers": p.offers}


def _page(
    signer: TokenSigner,
    p: StoredProfile,
    lang: Language,
    form: dict[str, Any],
    errors: dict[str, str] | None = None,
    notes: list[str] | None = None,
    status: int = 200,
) -> Response:
    return pages.page(
        "profile/edit.html",
        lang,
        status,
        texts=TEXT,
        csrf=sessions.csrf_token(p.member_id, signer),
        other_lang="en" if lang == "nb" else "nb",
        name=p.given_name,
        form=form,
        errors=errors or {},
        notes=notes or [],
        interests=INTERESTS,
        offers=OFFER_TYPES,
    )
