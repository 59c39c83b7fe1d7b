"""Applications under the eligibility policy, on the real broker and database: an
applicant verifies her address, the faculty's AK (or communications) decides with a
reason; approval makes an associate member, rejection publishes nothing about her."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.e2e.consent_helpers import outbox_drained, page_text, staff_headers, started, token_of
from tests.e2e.signup_helpers import mails_for, opened_events
from tests.stack import ServiceProcess, Stack

pytestmark = pytest.mark.real

APPLICATION = {
    "given_name": "Lars",
    "family_name": "Holm",
    "email": "lars.holm@example.no",
    "category": "external-supervisor",
    "faculty": "HS",
    "justification": "External supervisor of master's theses in nursing since 2019.",
    "language": "nb",
}


async def _applied_and_verified(
    stack: Stack, prefix: str, service: ServiceProcess, client: httpx.AsyncClient, **changes: str
) -> str:
    applied = await client.post("/applications", json={**APPLICATION, **changes})
    assert applied.status_code == 202, applied.text
    application_id: str = applied.json()["application_id"]
    [mail] = await mails_for(stack, prefix, application_id, service)
    assert (mail["kind"], mail["to_address"]) == ("email-verification", changes.get("email", APPLICATION["email"]))
    token = token_of(mail["action_url"])
    shown = await client.get("/applications/verify", params={"token": token})
    assert shown.status_code == 200
    assert 'id="confirm"' in shown.text
    verified = await client.post("/applications/verify", data={"token": token, "lang": "nb"})
    assert verified.status_code == 200, verified.text
    again = await client.post("/applications/verify", data={"token": token, "lang": "nb"})
    assert again.status_code == 409
    return application_id


async def _decide(client: httpx.AsyncClient, application_id: str, who: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post(f"/applications/{application_id}/decision", json=body, headers=who)


async def test_the_faculty_ak_approves_an_application_into_an_associate_member(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    service = await started(membership_service)
    async with httpx.AsyncClient(base_url=service.url) as client:
        assert (await client.post("/applications", json=APPLICATION)).status_code == 202
        queue = await client.get("/applications", headers=staff_headers("comms"))
        assert queue.json()["total"] == 0, "an unverified application is not in the queue"
        duplicate = await client.post("/applications", json=APPLICATION)
        assert duplicate.status_code == 409
        assert await membership_conn.fetchval("SELECT count(*) FROM applications") == 1

        application_id = await _applied_and_verified(stack, topic_prefix, service, client, email="lars@example.no")
        queue = (await client.get("/applications?status=pending", headers=staff_headers("ak", "HS"))).json()
        assert [a["application_id"] for a in queue["items"]] == [application_id]
        assert queue["items"][0]["policy_version"] == "2026-1"
        assert (await client.get("/applications?faculty=HS", headers=staff_headers("ak", "TNM"))).status_code == 403
        assert (await client.get("/applications", headers=staff_headers("ak", "TNM"))).json()["total"] == 0
        assert (await client.get("/applications", headers=staff_headers("aab"))).status_code == 403

        assert (
            await _decide(client, application_id, staff_headers("ak", "TNM"), decision="approve", reason="fine by me")
        ).status_code == 403
        assert (
            await _decide(client, application_id, staff_headers("at", "HS"), decision="approve", reason="fine by me")
        ).status_code == 403
        no_reason = await _decide(client, application_id, staff_headers("ak", "HS"), decision="approve")
        assert no_reason.status_code == 422
        assert any(p.startswith("reason:") for p in no_reason.json()["detail"])
        too_long = await _decide(
            client, application_id, staff_headers("ak", "HS"), decision="approve", reason="x" * 1001
        )
        assert too_long.status_code == 422

        reason = "Supervises theses for HS; qualifies as external supervisor."
        approved = await _decide(
            client, application_id, staff_headers("ak", "HS", subject="ak-hs"), decision="approve", reason=reason
        )
        assert approved.status_code == 200, approved.text
        decided = approved.json()
        assert {k: decided[k] for k in ("status", "decided_by", "decided_role", "decision_reason")} == {
            "status": "approved",
            "decided_by": "ak-hs",
            "decided_role": "ak",
            "decision_reason": reason,
        }
        assert decided["decision_policy_version"] == "2026-1"
        assert decided["decided_at"] is not None

        second = await _decide(
            client, application_id, staff_headers("comms"), decision="reject", reason="changed my mind"
        )
        assert second.status_code == 409
        assert "already decided (approved) by ak-hs" in second.json()["detail"]

    member = await membership_conn.fetchrow("SELECT member_id::text, status, student_number, email FROM members")
    assert dict(member) == {
        "member_id": application_id,
        "status": "associate",
        "student_number": None,
        "email": "lars@example.no",
    }
    history = await membership_conn.fetchrow(
        "SELECT what, detail FROM member_history WHERE member_id = $1", application_id
    )
    assert history["what"] == "approved"
    assert '"policy_version": "2026-1"' in history["detail"]
    await outbox_drained(membership_conn)
    [registered] = await opened_events(stack, topic_prefix, "member-registered", service)
    assert registered["subject"] == application_id
    assert (registered["data"]["status"], registered["data"].get("student_number")) == ("associate", None)


async def test_a_rejection_records_the_reason_and_publishes_nothing_about_the_applicant(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    service = await started(membership_service)
    async with httpx.AsyncClient(base_url=service.url) as client:
        application_id = await _applied_and_verified(stack, topic_prefix, service, client, faculty="TNM")
        rejected = await _decide(
            client,
            application_id,
            staff_headers("comms", subject="comms-1"),
            decision="reject",
            reason="No link to USN found.",
        )
        assert rejected.status_code == 200
        assert (rejected.json()["status"], rejected.json()["decided_by"]) == ("rejected", "comms-1")
        again = await _decide(
            client, application_id, staff_headers("ak", "TNM"), decision="approve", reason="second try"
        )
        assert again.status_code == 409
        listed = (await client.get("/applications?status=rejected", headers=staff_headers("at", "TNM"))).json()
        assert [a["decision_reason"] for a in listed["items"]] == ["No link to USN found."]

    assert await membership_conn.fetchval("SELECT count(*) FROM members") == 0
    await outbox_drained(membership_conn)
    assert await opened_events(stack, topic_prefix, "member-registered", service) == []
    assert await opened_events(stack, topic_prefix, "member-updated", service) == []


async def test_an_application_outside_the_policy_or_the_limits_is_refused_precisely(
    topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    service = await started(membership_service)
    async with httpx.AsyncClient(base_url=service.url) as client:
        unknown = await client.post("/applications", json={**APPLICATION, "category": "neighbour"})
        assert unknown.status_code == 422
        assert "choose one of continuing-education, staff" in unknown.json()["detail"]
        long_text = await client.post("/applications", json={**APPLICATION, "justification": "x" * 2001})
        assert long_text.status_code == 422
        assert any("justification" in p and "2000" in p for p in long_text.json()["detail"])
        bad_faculty = await client.post("/applications", json={**APPLICATION, "faculty": "XX"})
        assert bad_faculty.status_code == 422
        form = await client.post("/applications", data={**APPLICATION, "email": "nope"})
        assert form.status_code == 422
        assert "email" in page_text(form)
        assert (await client.get("/apply", params={"lang": "en"})).status_code == 200
        unknown_id = "00000000-0000-4000-8000-000000000000"
        missing = await _decide(client, unknown_id, staff_headers("comms"), decision="approve", reason="fine")
        assert missing.status_code == 404
        assert (await client.get("/applications")).status_code == 401

    assert await membership_conn.fetchval("SELECT count(*) FROM applications") == 0
