"""Network routes: the staff JSON API, and the members' page to join and leave.

`GET /networks` serves both: with a bearer token it is the staff list (JSON),
without one it is the logged-in member's page (HTML).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import ConfigDict, Field, field_validator

from alumni_kit.auth import StaffPrincipal, TokenSigner
from alumni_kit.http import BODY_REFUSALS, STAFF_REFUSALS, Responses, people_reader, refusals
from alumni_kit.runtime import ServiceRuntime
from alumni_kit.text_input import TextInput
from membership.profile import networks
from membership.profile import repository as profile
from membership.profile.texts import TEXT
from membership.web import pages, sessions
from usn_schemas.vocabulary import UUID_PATTERN, Faculty

HTTPS_ADDRESS = r"^\s*https://[^\s/?#]+\.[^\s/?#]+([/?#]\S*)?\s*$"
NetworkId = Annotated[str, Path(pattern=UUID_PATTERN)]
# Joining or leaving: her networks page again (404 for a network not open to her).
MEMBER_CHANGE: Responses = {**sessions.HTML_PAGE, **sessions.MEMBER_FORM, **refusals(404, html=True)}


class NetworkIn(TextInput):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=2, max_length=120)
    faculty: Faculty
    programme_code: str | None = Field(None, pattern=r"^[A-Za-z0-9ÆØÅæøå][A-Za-z0-9ÆØÅæøå-]{0,63}$")
    # The pattern only documents the rule (the validator below enforces it, with a clearer message).
    external_url: str | None = Field(None, max_length=500, json_schema_extra={"pattern": HTTPS_ADDRESS})

    @field_validator("name")
    @classmethod
    def _name_has_text(cls, value: str) -> str:
        value = " ".join(value.split())
        if len(value) < 2:
            raise ValueError("the name needs at least 2 characters besides spaces")
        return value

    @field_validator("external_url")
    @classmethod
    def _https_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme != "https" or not parts.hostname or "." not in parts.hostname or " " in value.strip():
            raise ValueError("must be an https:// address, e.g. https://www.linkedin.com/groups/1234567")
        return value.strip()


def networks_router(runtime: ServiceRuntime, staff: Callable[..., StaffPrincipal], signer: TokenSigner) -> APIRouter:
    reader = people_reader(staff)  # a network's members: not for the advisory board
    router = APIRouter(prefix="/networks", tags=["networks"])

    @router.post("", status_code=201, responses={**STAFF_REFUSALS, **BODY_REFUSALS, **refusals(409)})
    async def create_network(body: NetworkIn, who: StaffPrincipal = Depends(staff)) -> dict[str, Any]:
        if who.role not in ("comms", "ak"):
            raise HTTPException(403, "networks are created by communications or a faculty's Alumnikontakt")
        if not who.may_see(body.faculty):
            raise HTTPException(403, f"you may create networks for your own faculty only ({who.faculty})")
        new = networks.NewNetwork(body.name, body.faculty, body.programme_code, body.external_url, who.subject)
        try:
            async with runtime.pool.acquire() as conn:
                return await networks.create(conn, new)
        except networks.DuplicateNetworkError:
            raise HTTPException(409, f"{body.faculty} already has a network named {body.name!r}") from None

    @router.get("", response_model=None, responses={**sessions.HTML_PAGE, **sessions.NOT_LOGGED_IN, **STAFF_REFUSALS})
    async def list_networks(
        request: Request,
        # Staff's bearer token: the JSON list. Without one: the logged-in member's page.
        authorization: Annotated[str | None, Header()] = None,
        faculty: Faculty | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        lang: str | None = None,
    ) -> dict[str, Any] | Response:
        if authorization is None:
            return await _member_page(runtime, signer, request, lang)
        who = staff(authorization=authorization)
        if faculty is not None and not who.may_see(faculty):
            raise HTTPException(403, f"you may list your own faculty's networks only ({who.faculty})")
        async with runtime.pool.acquire() as conn:
            total, items = await networks.list_for_faculties(
                conn, (faculty,) if faculty else who.visible_faculties(), limit, offset
            )
        return {"total": total, "limit": limit, "offset": offset, "items": items}

    @router.get("/{network_id}/members", responses={**STAFF_REFUSALS, **refusals(404)})
    async def network_members(
        network_id: NetworkId,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        who: StaffPrincipal = Depends(reader),
    ) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            network = await networks.get(conn, network_id)
            if network is None:
                raise HTTPException(404, "no such network")
            if not who.may_see(network["faculty"]):
                raise HTTPException(
                    403, f"this network belongs to {network['faculty']}, not your faculty ({who.faculty})"
                )
            total, items = await networks.members_of(conn, network_id, limit, offset)
        return {"network": network, "total": total, "limit": limit, "offset": offset, "items": items}

    @router.post("/{network_id}/join", response_model=None, responses=MEMBER_CHANGE)
    async def join(network_id: NetworkId, request: Request) -> Response:
        return await _change(runtime, signer, request, network_id, joining=True)

    @router.post("/{network_id}/leave", response_model=None, responses=MEMBER_CHANGE)
    async def leave(network_id: NetworkId, request: Request) -> Response:
        return await _change(runtime, signer, request, network_id, joining=False)

    return router


async def _logged_in(signer: TokenSigner, request: Request) -> str:
    return await sessions.session_dependency(signer)(request)


Note = tuple[str, dict[str, str]]  # a key of profile_text.TEXT and its parameters


async def _member_page(
    runtime: ServiceRuntime,
    signer: TokenSigner,
    request: Request,
    lang: object,
    notes: list[Note] | None = None,
    status: int = 200,
) -> Response:
    member_id = await _logged_in(signer, request)
    async with runtime.pool.acquire() as conn:
        stored = await profile.load(conn, member_id)
        if stored is None:  # erased while logged in
            raise HTTPException(303, "log in first", headers={"Location": "/login"})
        open_networks = await networks.open_to_member(conn, member_id)
    language = pages.language(lang, stored.language)
    return pages.page(
        "networks/list.html",
        language,
        status,
        texts=TEXT,
        csrf=sessions.csrf_token(member_id, signer),
        networks=open_networks,
        notes=[TEXT[language][key].format(**params) for key, params in notes or []],
    )


async def _change(
    runtime: ServiceRuntime, signer: TokenSigner, request: Request, network_id: str, joining: bool
) -> Response:
    member_id = await _logged_in(signer, request)
    await sessions.check_form_csrf(request, member_id, signer)
    lang = (await request.form()).get("lang")
    async with runtime.pool.acquire() as conn, conn.transaction():
        network = await networks.open_network(conn, member_id, network_id)
        if network is not None:
            await (networks.join if joining else networks.leave)(conn, member_id, network_id)
    if network is None:
        return await _member_page(runtime, signer, request, lang, [("network_unknown", {})], 404)
    note = ("joined_now" if joining else "left_now", {"name": network["name"]})
    return await _member_page(runtime, signer, request, lang, [note])
