"""Member sessions: a signed, expiring token in an HttpOnly, SameSite=Strict cookie.

The token is signed with the shared keys (alumni_kit.auth), so no session table
is needed and a key rotation keeps members logged in until their token expires.
SameSite=Strict keeps the cookie off every cross-site request; forms carry a
CSRF token as well (derived from the member id with a key of its own), a second
lock should a browser ignore SameSite.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import urlparse

from fastapi import HTTPException, Request, Response

from alumni_kit.auth import InvalidTokenError, TokenSigner
from alumni_kit.http import Problem, Responses, refusals
from usn_schemas.ids import new_id

COOKIE = "alumni_session"
SESSION_KIND = "member-session"
DEFAULT_SESSION_SECONDS = 8 * 3600
CSRF_FIELD = "csrf"
_CSRF_LABEL = "membership-csrf"


# What a route behind the session answers without one: a browser is sent to /login, a script gets 401.
NOT_LOGGED_IN: Responses = {
    303: {"model": Problem, "description": "A browser without a session: to /login."},
    **refusals(401),
}
# A member's form: also a stale or cross-site CSRF field (403) and fields that break their rules (422, a page).
MEMBER_FORM: Responses = {**NOT_LOGGED_IN, **refusals(403, 413), **refusals(422, html=True)}
HTML_PAGE: Responses = {200: {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}}}


def start_session(
    response: Response,
    member_id: str,
    signer: TokenSigner,
    ttl_seconds: int = DEFAULT_SESSION_SECONDS,
    secure: bool = False,
) -> None:
    """Log `member_id` in on `response` (the cookie expires with the token)."""
    token = signer.sign(SESSION_KIND, {"sub": member_id, "sid": new_id()}, ttl_seconds)
    response.set_cookie(COOKIE, token, max_age=ttl_seconds, path="/", httponly=True, samesite="strict", secure=secure)


def end_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def session_member(request: Request, signer: TokenSigner) -> str | None:
    """The logged-in member's id, or None (no cookie, or a forged or expired one)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        claims = signer.verify(token, SESSION_KIND)
    except InvalidTokenError:
        return None
    member_id = claims.get("sub")
    return member_id if isinstance(member_id, str) and member_id else None


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def session_dependency(signer: TokenSigner) -> Callable[[Request], Awaitable[str]]:
    """A FastAPI dependency: the logged-in member id; else 303 to /login (browsers) or 401 (API clients)."""

    async def logged_in_member(request: Request) -> str:
        member_id = session_member(request, signer)
        if member_id is not None:
            return member_id
        if wants_html(request):
            raise HTTPException(303, "log in first", headers={"Location": "/login"})
        raise HTTPException(401, "log in first: no valid session cookie")

    return logged_in_member


def csrf_token(member_id: str, signer: TokenSigner) -> str:
    """The hidden form field for `member_id`'s forms (stable per member and signing key)."""
    return _csrf_tokens(member_id, signer)[0]


def check_csrf(member_id: str, token: object, signer: TokenSigner) -> None:
    """403 unless `token` is `member_id`'s CSRF token under any current key."""
    given = token.encode("utf-8", "replace") if isinstance(token, str) else b""
    if not any(hmac.compare_digest(given, t.encode()) for t in _csrf_tokens(member_id, signer)):
        raise HTTPException(403, "the form is stale or was not sent from this site; reload the page and try again")


async def check_form_csrf(request: Request, member_id: str, signer: TokenSigner) -> None:
    """check_csrf on the posted form's `csrf` field."""
    form = await request.form()
    check_csrf(member_id, form.get(CSRF_FIELD), signer)


def _csrf_tokens(member_id: str, signer: TokenSigner) -> list[str]:
    return [hmac.new(k, member_id.encode(), hashlib.sha256).hexdigest() for k in signer.derived_keys(_CSRF_LABEL)]


def refuse_cross_site(request: Request) -> None:
    """403 for a POST another site's page made (login CSRF: logging her in as someone else).

    SameSite keeps our cookie off such a request but not a new cookie out of its
    answer, so the links that log in or record something check where the POST
    came from: the browser's Sec-Fetch-Site, else its Origin against our Host.
    Clients that send neither (scripts, the tests' HTTP client) are not browsers.
    """
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    foreign_origin = origin not in (None, "null") and urlparse(origin).netloc != request.headers.get("host")
    if site == "cross-site" or (site is None and foreign_origin):
        raise HTTPException(403, "this form must be sent from the USN Alumni site itself")
