"""Consent's staff API: current state, history, proof, staff-recorded facts and import.

Communications staff see every member; an Alumnikontakt or Alumniteam member
(AK/AT) only members of her faculty; other roles have no access to consent
records. Unknown purposes or channels are refused with 422 naming the allowed values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import AwareDatetime, ConfigDict, Field

from alumni_kit.auth import StaffPrincipal
from alumni_kit.db import Conn
from alumni_kit.http import BODY_REFUSALS, STAFF_REFUSALS, refusals
from alumni_kit.runtime import ServiceRuntime
from alumni_kit.text_input import TextInput
from consent import ledger, subjects
from consent.ledger import FactRequest, Outcome
from consent.metrics import ConsentMetrics
from consent.notices import NoticeBook
from usn_schemas.consent import CHANNELS, Channel, ConsentState

MemberId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z-]+$")]
FactId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f-]+$")]
CONSENT_ROLES = ("comms", "ak", "at")
IMPORT_MAX = 10_000
# Rows per import transaction: short enough that a member's own change waiting on
# her row lock is not held up noticeably, long enough to keep COPY worthwhile.
IMPORT_CHUNK = 500


def unknown_purpose(purpose: str, purposes: tuple[str, ...], where: list[str | int]) -> HTTPException:
    return HTTPException(
        422,
        [
            {
                "loc": where,
                "msg": f"unknown purpose {purpose[:40]!r}; allowed: {', '.join(purposes)}",
                "type": "enum",
                "ctx": {"expected": list(purposes)},
            }
        ],
    )


class StaffFact(TextInput):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    purpose: str = Field(pattern=r"^[a-z][a-z0-9-]{1,39}$")
    state: ConsentState
    # Why staff record this (a phone call, a signed form): required, kept as evidence.
    reason: str = Field(min_length=5, max_length=1000)


class ImportItem(TextInput):
    model_config = ConfigDict(extra="forbid")

    member_id: str = Field(min_length=1, max_length=64)
    channel: Channel
    purpose: str = Field(pattern=r"^[a-z][a-z0-9-]{1,39}$")
    state: ConsentState


class ImportRequest(TextInput):
    model_config = ConfigDict(extra="forbid")

    # Where the consents come from, e.g. "TNM newsletter list 2024, double opt-in by the list tool".
    evidence: str = Field(min_length=5, max_length=1000)
    items: list[ImportItem] = Field(min_length=1, max_length=IMPORT_MAX)


def staff_router(
    runtime: ServiceRuntime, staff: Callable[..., StaffPrincipal], notices: NoticeBook, metrics: ConsentMetrics
) -> APIRouter:
    router = APIRouter(prefix="/consent", tags=["consent (staff)"], responses=STAFF_REFUSALS)
    purposes = notices.purposes

    def check_purpose(purpose: str, where: list[str | int]) -> None:
        if purpose not in purposes:
            raise unknown_purpose(purpose, purposes, where)

    async def visible_member(conn: Conn, member_id: str, who: StaffPrincipal) -> None:
        if who.role not in CONSENT_ROLES:
            raise HTTPException(403, "consent records are for communications staff and the member's faculty AK/AT")
        subject = await subjects.get(conn, member_id)
        if subject is None:
            raise HTTPException(404, "consent knows no such member (unknown, or erased)")
        if not any(who.may_see(f) for f in subject.faculties):
            raise HTTPException(403, f"this member is not in your faculty ({who.faculty})")

    @router.get("/purposes")
    async def list_purposes(who: StaffPrincipal = Depends(staff)) -> dict[str, Any]:
        return {
            "channels": list(CHANNELS),
            "purposes": [
                {"purpose": n.purpose, "language": n.language, "version": n.version, "title": n.title, "text": n.text}
                | {"sha256": n.sha256}
                for n in notices.all()
            ],
        }

    @router.get("/members/{member_id}", responses=refusals(404))
    async def current_state(member_id: MemberId, who: StaffPrincipal = Depends(staff)) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            await visible_member(conn, member_id, who)
            state = await ledger.current(conn, member_id)
            awaiting = await subjects.awaiting_confirmation(conn, member_id)
        return {
            "member_id": member_id,
            "consent": [
                {"channel": c, "purpose": p, "state": state.get((c, p), "never-given")}
                for p in purposes
                for c in CHANNELS
            ],
            "awaiting_confirmation": sorted(awaiting),
        }

    @router.get("/members/{member_id}/history", responses=refusals(404))
    async def history(member_id: MemberId, who: StaffPrincipal = Depends(staff)) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            await visible_member(conn, member_id, who)
            facts = await ledger.history(conn, member_id)
        return {"member_id": member_id, "facts": facts}

    @router.get("/members/{member_id}/proof", responses=refusals(404))
    async def proof(
        member_id: MemberId,
        channel: Channel,
        purpose: Annotated[str, Query(min_length=1, max_length=40)],
        at: AwareDatetime,
        who: StaffPrincipal = Depends(staff),
    ) -> dict[str, Any]:
        """Was the member allowed to receive `channel` for `purpose` at time `at`, and on which fact does that rest?"""
        check_purpose(purpose, ["query", "purpose"])
        async with runtime.pool.acquire() as conn:
            await visible_member(conn, member_id, who)
            fact = await ledger.fact_at(conn, member_id, channel, purpose, at)
            notice = await ledger.notice(conn, fact["notice_sha256"]) if fact and fact["notice_sha256"] else None
        return {
            "member_id": member_id,
            "channel": channel,
            "purpose": purpose,
            "at": at,
            "allowed": bool(fact and fact["state"] == "given"),
            "fact": fact,
            "notice": notice,
        }

    @router.get("/facts/{fact_id}", responses=refusals(404))
    async def fact(fact_id: FactId, who: StaffPrincipal = Depends(staff)) -> dict[str, Any]:
        """One fact by id: what a mailer's send record points to; erased facts for comms only."""
        async with runtime.pool.acquire() as conn:
            found = await ledger.fact_by_id(conn, fact_id)
            if found is None:
                raise HTTPException(404, "no such consent fact")
            if found["member_id"] is None:
                if who.role != "comms":
                    raise HTTPException(403, "facts of erased members are shown to communications staff only")
            else:
                await visible_member(conn, found["member_id"], who)
            notice = await ledger.notice(conn, found["notice_sha256"]) if found["notice_sha256"] else None
        return {"fact": found, "notice": notice}

    @router.post("/members/{member_id}/facts", responses={**BODY_REFUSALS, **refusals(404)})
    async def record_fact(member_id: MemberId, body: StaffFact, who: StaffPrincipal = Depends(staff)) -> dict[str, Any]:
        """Staff record a consent given or withdrawn outside the platform (a call, a paper form), with the reason."""
        if body.state == "given":
            # A withdrawal may name any purpose, even one no longer offered (art. 7(3)); consent only current ones.
            check_purpose(body.purpose, ["body", "purpose"])
            if who.role != "comms":
                raise HTTPException(403, "only communications staff record consent given outside the platform")
        request = FactRequest(
            member_id=member_id,
            channel=body.channel,
            purpose=body.purpose,
            state=body.state,
            source="staff",
            method="staff-recorded",
            reason=body.reason,
            actor=who.subject,
        )
        async with runtime.pool.acquire() as conn, conn.transaction():
            await visible_member(conn, member_id, who)
            outcome = await ledger.record(conn, [request])
        metrics.recorded("staff", outcome)
        fact = outcome.recorded[0].model_dump(mode="json") if outcome.recorded else None
        return {"recorded": fact is not None, "fact": fact}

    @router.post("/import", responses=BODY_REFUSALS)
    async def import_consents(body: ImportRequest, who: StaffPrincipal = Depends(staff)) -> dict[str, Any]:
        """Bulk import of existing consents (e.g. legacy newsletter lists); communications staff only.

        An import fills gaps only: where the ledger already holds a fact for a member ×
        channel × purpose (her own withdrawal, say), the list does not override it.
        Re-running an import records nothing new. Committed in chunks, so one-click
        withdrawals and page saves are not held up behind a long import.
        """
        if who.role != "comms":
            raise HTTPException(403, "only communications staff import consents")
        for index, item in enumerate(body.items):
            if item.state == "given":
                check_purpose(item.purpose, ["body", "items", index, "purpose"])
        requests = [
            FactRequest(
                member_id=item.member_id,
                channel=item.channel,
                purpose=item.purpose,
                state=item.state,
                source="import",
                method="import",
                reason=body.evidence,
                actor=who.subject,
                # A list never overrides what the ledger holds; a withdrawal on it always counts.
                fills_gaps_only=item.state == "given",
            )
            for item in body.items
        ]
        outcome = Outcome([], 0, [])
        for start in range(0, len(requests), IMPORT_CHUNK):
            async with runtime.pool.acquire() as conn, conn.transaction():
                outcome += await ledger.record(conn, requests[start : start + IMPORT_CHUNK])
        metrics.recorded("import", outcome)
        return {
            "recorded": len(outcome.recorded),
            "unchanged": outcome.unchanged,
            "kept_existing": outcome.kept_existing,
            "unknown_members": outcome.unknown_members,
        }

    return router
