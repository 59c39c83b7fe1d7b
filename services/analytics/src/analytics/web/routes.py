"""The dashboard page (`/analytics/dashboard`, nb and en) and the files it loads.

Staff sign in with their bearer token: sent as `Authorization: Bearer …`, or pasted once
into the sign-in form, which keeps it in an HttpOnly, SameSite=Strict cookie for
/analytics only (it expires with the token). The page shows the same suppressed figures
as the API for the caller's scope, each chart also as a table.

plotly.js is the JS bundle inside the `plotly` Python package (a dependency of the
project): served from here, so the page's CSP allows scripts from 'self' only.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from alumni_kit.auth import SCOPED_ROLES, InvalidTokenError, StaffPrincipal, TokenSigner, verify_staff_token
from alumni_kit.http import Responses, answers_in, refusals
from alumni_kit.pages import Pages, language, redirect
from analytics.read.answers import ANSWERS
from analytics.read.routes import AS_OF_RETRY_SECONDS, AsOfParam, FacultyParam, ReadSource, asking
from analytics.web import charts
from analytics.web.i18n import TEXT
from usn_schemas.vocabulary import Language

PAGES = Pages(Path(__file__).parent / "templates", TEXT)
COOKIE = "analytics_staff"
COOKIE_PATH = "/analytics"
# The kit's page policy, with scripts (and plotly's own inline styles) from this service only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
STATIC = Path(__file__).parent / "static"
_PLOTLY_JS = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
# The dashboard's charts: the answers it reads.
SHOWN = ("members/growth", "reach", "campaigns", "events", "volunteering", "engagement", "members/pilot", "value")
# A redirect (303) has no body, so no content type: documented by its description only.
DASHBOARD_ANSWERS: Responses = {
    **answers_in("text/html", {200: "The dashboard."}),
    303: {"description": "Not signed in: to the sign-in page."},
    # The API's reasons (read/routes.py) as a page; a parameter with U+0000 is refused as JSON.
    **refusals(403, 422, 429, html=True),
}
LOGIN_ANSWERS: Responses = {
    **answers_in("text/html", {401: "Not a valid staff token: the form again, saying so."}),
    303: {"description": "Signed in: to the dashboard."},
    **refusals(422, html=True),
}
LOGOUT_ANSWERS: Responses = {303: {"description": "Signed out: to the sign-in page."}, **refusals(422)}


def _page(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = CSP
    return response


def _refusal_page(exc: HTTPException, lang: Language) -> HTMLResponse:
    """The read side's refusal as a page in her language; a 429 keeps its Retry-After."""
    t = TEXT[lang]
    if exc.status_code == 429:
        lines = [t["as_of_busy"].format(seconds=AS_OF_RETRY_SECONDS)]
    else:
        lines = [str(p["msg"]) if isinstance(p, dict) else str(p) for p in _listed(exc.detail)]
    page = _page(PAGES.message(lang, t["title"], lines, status=exc.status_code))
    page.headers.update(exc.headers or {})
    return page


def _principal(request: Request, signer: TokenSigner) -> StaffPrincipal | None:
    """The caller from her bearer header or her cookie; None when neither holds a valid token."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        token = request.cookies.get(COOKIE, "")
    if not token:
        return None
    try:
        return verify_staff_token(signer, token.strip())
    except InvalidTokenError:
        return None


def _cells(chart: charts.Chart, lang: str, suppressed: str) -> list[list[dict[str, Any]]]:
    return [
        [
            {"text": charts.fmt(v, col.kind, lang, suppressed), "kind": col.kind, "value": v}
            for v, col in zip(row, chart.columns, strict=True)
        ]
        for row in chart.rows
    ]


def _extras(chart: charts.Chart, lang: str, suppressed: str) -> list[dict[str, Any]]:
    return [
        {"label": label, "value": v, "kind": kind, "text": charts.fmt(v, kind, lang, suppressed)}
        for label, v, kind in chart.extra
    ]


def dashboard_router(source: ReadSource, signer: TokenSigner, secure_cookies: Callable[[Request], bool]) -> APIRouter:
    router = APIRouter(prefix="/analytics", tags=["dashboard"])

    # No response_class: the documented refusals are JSON (a parameter with U+0000) or a page.
    @router.get("/dashboard", response_model=None, responses=DASHBOARD_ANSWERS)
    async def dashboard(
        request: Request,
        lang: Annotated[str | None, Query()] = None,
        as_of: AsOfParam = None,
        faculty: FacultyParam = None,
    ) -> Response:
        chosen = language(lang, request.headers.get("accept-language", "")[:2])
        who = _principal(request, signer)
        if who is None:
            return redirect(f"/analytics/dashboard/login?lang={chosen}")
        as_of, faculty = as_of or None, faculty or None  # the page's form sends empty fields
        t = TEXT[chosen]
        try:
            async with asking(source, who, as_of, faculty) as ask:
                answers = {name: await ANSWERS[name](ask) for name in SHOWN}
                stamp = (ask.as_of or ask.now).strftime("%Y-%m-%d %H:%M UTC")
                scope = t["scope_all"] if ask.scope.faculty is None else f"{t['scope_faculty']} {ask.scope.faculty}"
        except HTTPException as exc:
            return _refusal_page(exc, chosen)
        drawn = charts.charts(answers, t)
        kept = {k: v for k, v in (("as_of", as_of), ("faculty", faculty)) if v}
        query = f"&{urlencode(kept)}" if kept else ""  # the language links keep the choice
        return _page(
            PAGES.page(
                "dashboard.html",
                chosen,
                charts=drawn,
                tables={c.id: _cells(c, chosen, t["suppressed"]) for c in drawn},
                extras={c.id: _extras(c, chosen, t["suppressed"]) for c in drawn},
                specs=[c.spec() for c in drawn],
                as_of=stamp,
                scope=scope,
                query=query,
                scoped=who.role in SCOPED_ROLES,
                faculties=who.visible_faculties(),
                faculty=faculty or (who.faculty if who.role in SCOPED_ROLES else None),
                as_of_param=as_of or "",
            )
        )

    @router.get("/dashboard/login", response_class=HTMLResponse, responses=answers_in("text/html", {200: "Sign in."}))
    async def login_form(request: Request, lang: Annotated[str | None, Query()] = None) -> HTMLResponse:
        chosen = language(lang, request.headers.get("accept-language", "")[:2])
        return _page(PAGES.page("login.html", chosen))

    @router.post("/dashboard/login", response_model=None, responses=LOGIN_ANSWERS)
    async def login(
        request: Request,
        token: Annotated[str, Form(max_length=4000)],
        lang: Annotated[str | None, Form()] = None,
    ) -> Response:
        chosen = language(lang)
        try:
            verify_staff_token(signer, token.strip())  # a genuine staff token with a valid role
            claims = signer.verify(token.strip(), "staff")
        except InvalidTokenError:
            return _page(PAGES.page("login.html", chosen, status=401, error=TEXT[chosen]["bad_token"]))
        response = redirect(f"/analytics/dashboard?lang={chosen}")
        response.set_cookie(
            COOKIE,
            token.strip(),
            expires=int(claims["exp"]),
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=secure_cookies(request),
        )
        return response

    @router.post("/dashboard/logout", responses=LOGOUT_ANSWERS)
    async def logout(lang: Annotated[str | None, Form()] = None) -> Response:
        response = redirect(f"/analytics/dashboard/login?lang={language(lang)}")
        response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
        return response

    @router.get("/static/plotly.min.js", responses=answers_in("text/javascript", {200: "plotly.js (its own licence)."}))
    async def plotly_js() -> Response:
        return _static(_plotly_bundle())

    @router.get("/static/dashboard.js", responses=answers_in("text/javascript", {200: "Draws the charts."}))
    async def dashboard_js() -> Response:
        return _static((STATIC / "dashboard.js").read_bytes())

    return router


@functools.cache
def _plotly_bundle() -> bytes:
    return _PLOTLY_JS.read_bytes()  # 4.8 MB, read once


def icon_router() -> APIRouter:
    """Browsers ask every site for /favicon.ico: an empty answer, not a 404 in the console."""
    router = APIRouter(include_in_schema=False)

    @router.get("/favicon.ico")
    async def favicon() -> Response:
        return Response(status_code=204, headers={"Cache-Control": "public, max-age=86400"})

    return router


def _static(body: bytes) -> Response:
    # The same for everyone and no personal data: a browser may keep it for a day.
    return Response(
        body,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


def _listed(detail: Any) -> list[Any]:
    return detail if isinstance(detail, list) else [detail]
