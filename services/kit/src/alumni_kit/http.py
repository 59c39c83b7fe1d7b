"""HTTP pieces every service mounts: health, readiness, metrics and staff auth."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Header, HTTPException, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from alumni_kit.auth import (
    InvalidTokenError,
    StaffPrincipal,
    TokenSigner,
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


def ops_router(registry: CollectorRegistry, readiness: Callable[[], Awaitable[dict[str, bool]]]) -> APIRouter:
    """/healthz (the process answers), /readyz (its dependencies answer), /metrics."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(response: Response) -> dict[str, object]:
        checks = await readiness()
        ready = all(checks.values())
        response.status_code = 200 if ready else 503
        return {"ready": ready, "checks": checks}

    @router.get("/metrics")
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
