"""Service-to-service key API: other services open and seal members' personal data with it.

Only the services named in `MEMBERSHIP_KEY_CLIENTS`, proving it with a service
token signed with the platform's shared keys, get keys; they cache them in
memory for `key_cache_seconds` at most. The routes sit under /internal: the
ingress must not route that prefix from outside (docs/erasure.md).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from alumni_kit.http import BODY_REFUSALS, SERVICE_REFUSALS
from alumni_kit.runtime import ServiceRuntime
from alumni_kit.shredding import SubjectKey
from membership.rights import keys
from usn_schemas.vocabulary import UUID_PATTERN

MAX_KEYS = 1000  # per request; the kit's HttpKeyRing asks in chunks of this size


class KeyRef(BaseModel):
    subject_id: str = Field(pattern=UUID_PATTERN)
    version: int = Field(ge=1, le=2**31 - 1)  # the key table's int: beyond it is a 422, not a 500


class LookupRequest(BaseModel):
    keys: Annotated[list[KeyRef], Field(max_length=MAX_KEYS)]


class CurrentRequest(BaseModel):
    subject_ids: Annotated[list[Annotated[str, Field(pattern=UUID_PATTERN)]], Field(max_length=MAX_KEYS)]


def key_router(runtime: ServiceRuntime, service: Callable[..., str], clients: frozenset[str]) -> APIRouter:
    def known_client(caller: str = Depends(service)) -> str:
        if caller not in clients:
            raise HTTPException(403, f"service {caller!r} may not fetch keys")
        return caller

    router = APIRouter(
        prefix="/internal/keys",
        tags=["internal"],
        dependencies=[Depends(known_client)],
        responses={**SERVICE_REFUSALS, **BODY_REFUSALS},
    )

    @router.post("/lookup")
    async def lookup(request: LookupRequest) -> dict[str, Any]:
        """The requested keys that still exist; an erased subject's are simply absent."""
        async with runtime.pool.acquire() as conn:
            found = await keys.lookup(conn, {(k.subject_id.lower(), k.version) for k in request.keys})
        return {"keys": [_out(SubjectKey(s, v, secret)) for (s, v), secret in found.items()]}

    @router.post("/current")
    async def current(request: CurrentRequest) -> dict[str, Any]:
        """The key to seal new messages about each subject; erased subjects are listed apart."""
        wanted = {s.lower() for s in request.subject_ids}
        async with runtime.pool.acquire() as conn, conn.transaction():
            erased = await keys.erased_among(conn, list(wanted))
            found = await keys.subject_keys(conn, wanted - erased)
        return {"keys": [_out(k) for k in found.values()], "erased": sorted(erased)}

    return router


def _out(key: SubjectKey) -> dict[str, Any]:
    return {"subject_id": key.subject_id, "version": key.version, "secret": base64.b64encode(key.secret).decode()}
