"""HTTP pieces every service mounts: health, readiness, metrics and staff auth."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, HTTPException, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, ConfigDict

from alumni_kit.auth import (
    InvalidTokenError,
    StaffPrincipal,
    TokenSigner,
    verify_operator_token,
    verify_service_token,
    verify_staff_token,
)

T = TypeVar("T")

# Member pages of every service hold personal data and links: never cached, never
# framed, never leaked by a Referer. One policy, so a change reaches every page.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


class FieldProblem(BaseModel):
    """One field at fault: FastAPI's own validation errors, and the routes' checks in the same shape."""

    model_config = ConfigDict(extra="allow")  # e.g. `type`, `ctx`, or a template's `line`

    loc: list[str | int] | None = None
    msg: str


class Problem(BaseModel):
    """The body of every refusal of the JSON APIs: one line, several, or the fields at fault."""

    detail: str | FieldProblem | list[str | FieldProblem]


_REFUSALS = {
    400: "The body could not be read: not UTF-8, or not the JSON it declares.",
    401: "No bearer token (or session), or one that is forged, altered or expired.",
    403: "The caller's role or faculty may not do this, or the form did not come from this site.",
    404: "No such resource (or, for a link, one never issued).",
    409: "Conflicts with what exists, or the link was used already.",
    410: "The link has expired.",
    413: "The body is larger than this endpoint accepts.",
    422: "A parameter or field broke its rules; each problem names it.",
    429: "Busy with an earlier request of this kind; try again after Retry-After seconds.",
    503: "A service this one needs did not answer; try again shortly.",
}


# FastAPI's `responses=`: documented answers by status code.
Responses = dict[int | str, dict[str, Any]]


def refusals(*codes: int, html: bool = False) -> Responses:
    """OpenAPI `responses=` for these refusals, each a `Problem` (JSON); with `html`, also the
    page a browser gets instead (routes that serve both)."""
    documented: Responses = {}
    for code in codes:
        documented[code] = {"model": Problem, "description": _REFUSALS[code]}
        if html:
            documented[code]["content"] = {"text/html": {"schema": {"type": "string"}}}
    return documented


def answers_in(media_type: str, described: dict[int, str]) -> Responses:
    """OpenAPI `responses=` for answers that are not JSON (a page, plain text, an image), by status."""
    content = {media_type: {"schema": {"type": "string"}}}
    return {code: {"description": text, "content": content} for code, text in described.items()}


# A staff route: no or a bad token, a role or faculty that may not, and its parameters' rules.
STAFF_REFUSALS = refusals(401, 403, 422)
# A service-to-service route (service token), likewise.
SERVICE_REFUSALS = refusals(401, 403, 422)
# What any route that reads a JSON body can answer besides its own refusals.
BODY_REFUSALS = refusals(400, 413, 422)


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, bool]


def ops_router(registry: CollectorRegistry, readiness: Callable[[], Awaitable[dict[str, bool]]]) -> APIRouter:
    """/healthz (the process answers), /readyz (its dependencies answer), /metrics."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", responses={503: {"model": Readiness, "description": "A dependency does not answer."}})
    async def readyz(response: Response) -> Readiness:
        checks = await readiness()
        ready = all(checks.values())
        response.status_code = 200 if ready else 503
        return Readiness(ready=ready, checks=checks)

    # Prometheus' text format, not JSON.
    @router.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def staff_principal(signer: TokenSigner) -> Callable[..., StaffPrincipal]:
    """A FastAPI dependency: the caller's verified staff identity, or 401."""
    return _bearer("staff", lambda token: verify_staff_token(signer, token))


def people_reader(staff: Callable[..., StaffPrincipal]) -> Callable[..., StaffPrincipal]:
    """`staff`, refusing roles that may not see individual members (the advisory board)."""

    def dependency(who: StaffPrincipal = Depends(staff)) -> StaffPrincipal:
        if not who.sees_people:
            raise HTTPException(403, f"role {who.role} sees analytics, not individual members")
        return who

    return dependency


def service_caller(signer: TokenSigner) -> Callable[..., str]:
    """A FastAPI dependency for service-to-service routes: the calling service's name, or 401."""
    return _bearer("service", lambda token: verify_service_token(signer, token))


class KeyCaller(BaseModel):
    """Who calls the key API: a service, or an operator (a person with an operator token)."""

    model_config = ConfigDict(frozen=True)

    kind: str  # "service" or "operator"
    name: str


def service_or_operator_caller(signer: TokenSigner) -> Callable[..., KeyCaller]:
    """A FastAPI dependency: the calling service or operator, or 401."""

    def verify(token: str) -> KeyCaller:
        try:
            return KeyCaller(kind="service", name=verify_service_token(signer, token))
        except InvalidTokenError as not_service:
            try:
                return KeyCaller(kind="operator", name=verify_operator_token(signer, token))
            except InvalidTokenError:
                raise not_service from None

    return _bearer("service or operator", verify)


def _bearer(kind: str, verify: Callable[[str], T]) -> Callable[..., T]:
    def dependency(authorization: Annotated[str | None, Header()] = None) -> T:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, f"a {kind} bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        try:
            return verify(token.strip())
        except InvalidTokenError as exc:
            raise HTTPException(401, f"invalid token: {exc}", headers={"WWW-Authenticate": "Bearer"}) from None

    return dependency


StaffDep = Annotated[StaffPrincipal, Depends]
