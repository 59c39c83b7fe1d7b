"""Service-to-service key API: other services open and seal members' personal data with it.

Only the services named in `MEMBERSHIP_KEY_CLIENTS`, proving it with a service
token signed with the platform's shared keys, get keys; they cache them in
memory for `key_cache_seconds` at most. The routes sit under /internal: the
ingress must not route that prefix from outside (docs/erasure.md).

Operators named in `MEMBERSHIP_KEY_OPERATORS`, with an operator token
(`alumni-token operator`), may look keys up to open sealed fields in a replay
(`alumni replay --open`), never fetch the current ones (they seal nothing). Each
operator lookup is logged with the operator's id and the number of keys, so who
opened what stays accountable; an erased member's keys are gone for them too.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from alumni_kit.http import BODY_REFUSALS, SERVICE_REFUSALS, KeyCaller
from alumni_kit.runtime import ServiceRuntime
from alumni_kit.shredding import SubjectKey
from membership.rights import keys
from usn_schemas.vocabulary import UUID_PATTERN

log = logging.getLogger(__name__)
MAX_KEYS = 1000  # per request; the kit's HttpKeyRing asks in chunks of this size


class KeyRef(BaseModel):
    subject_id: str = Field(pattern=UUID_PATTERN)
    version: int = Field(ge=1, le=2**31 - 1)  # the key table's int: beyond it is a 422, not a 500


class LookupRequest(BaseModel):
    keys: Annotated[list[KeyRef], Field(max_length=MAX_KEYS)]


class CurrentRequest(BaseModel):
    subject_ids: Annotated[list[Annotated[str, Field(pattern=UUID_PATTERN)]], Field(max_length=MAX_KEYS)]


def key_router(
    runtime: ServiceRuntime,
    caller: Callable[..., KeyCaller],
    clients: frozenset[str],
    operators: frozenset[str] = frozenset(),
) -> APIRouter:
    def known_client(who: KeyCaller = Depends(caller)) -> KeyCaller:
        if who.kind == "service" and who.name in clients:
            return who
        if who.kind == "operator" and who.name in operators:
            return who
        raise HTTPException(403, f"{who.kind} {who.name!r} may not fetch keys")

    def known_service(who: KeyCaller = Depends(known_client)) -> KeyCaller:
        if who.kind != "service":
            raise HTTPException(403, "operators may look keys up, not seal with them")
        return who

    router = APIRouter(prefix="/internal/keys", tags=["internal"], responses={**SERVICE_REFUSALS, **BODY_REFUSALS})

    @router.post("/lookup")
    async def lookup(request: LookupRequest, who: KeyCaller = Depends(known_client)) -> dict[str, Any]:
        """The requested keys that still exist; an erased subject's are simply absent."""
        async with runtime.pool.acquire() as conn:
            found = await keys.lookup(conn, {(k.subject_id.lower(), k.version) for k in request.keys})
        if who.kind == "operator":
            log.info("operator %s looked up %d keys (%d still exist)", who.name, len(request.keys), len(found))
        return {"keys": [_out(SubjectKey(s, v, secret)) for (s, v), secret in found.items()]}

    @router.post("/current", dependencies=[Depends(known_service)])
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
