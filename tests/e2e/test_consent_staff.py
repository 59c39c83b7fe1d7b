"""Consent's staff API: proof at a point in time, history, faculty scope, staff-recorded
facts with their reason, import, and precise 422s for unknown purposes or channels."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from alumni_kit.auth import issue_unsubscribe_token
from tests.e2e.consent_helpers import SIGNER, ledger, member_registered, register, staff_headers, started
from tests.stack import ServiceProcess, Stack

pytestmark = pytest.mark.real


@pytest.fixture
async def consent(consent_service: ServiceProcess) -> ServiceProcess:
    consent_service.env["CONSENT_INVITATIONS_ENABLED"] = "false"
    return await started(consent_service)


def record(
    consent: ServiceProcess, member_id: str, state: str, reason: str = "Phone call, case 26/0099"
) -> httpx.Response:
    return httpx.post(
        f"{consent.url}/consent/members/{member_id}/facts",
        json={"channel": "email", "purpose": "newsletter", "state": state, "reason": reason},
        headers=staff_headers("comms"),
    )


async def test_proof_says_what_held_at_a_time_and_on_which_fact(
    stack: Stack, topic_prefix: str, consent: ServiceProcess, consent_conn: asyncpg.Connection
) -> None:
    member = member_registered(faculty="HH")
    member_id = member["data"]["member_id"]
    await register(stack, topic_prefix, consent_conn, member)
    before = datetime.now(UTC)
    await asyncio.sleep(0.05)
    given = record(consent, member_id, "given").json()["fact"]
    await asyncio.sleep(0.05)
    between = datetime.now(UTC)
    await asyncio.sleep(0.05)
    withdrawn = record(consent, member_id, "withdrawn").json()["fact"]
    after = datetime.now(UTC) + timedelta(seconds=1)

    def proof(at: datetime, who: dict[str, str] | None = None) -> httpx.Response:
        return httpx.get(
            f"{consent.url}/consent/members/{member_id}/proof",
            params={"channel": "email", "purpose": "newsletter", "at": at.isoformat()},
            headers=who or staff_headers("comms"),
        )

    assert proof(before).json()["allowed"] is False
    assert proof(before).json()["fact"] is None
    at_between = proof(between, staff_headers("ak", "HH")).json()
    assert at_between["allowed"] is True
    assert at_between["fact"]["fact_id"] == given["fact_id"]
    assert at_between["fact"]["reason"] == "Phone call, case 26/0099"
    assert proof(after).json()["allowed"] is False
    assert proof(after).json()["fact"]["fact_id"] == withdrawn["fact_id"]

    history = httpx.get(f"{consent.url}/consent/members/{member_id}/history", headers=staff_headers("at", "HH")).json()
    assert [(f["sequence"], f["state"], f["source"]) for f in history["facts"]] == [
        (1, "given", "staff"),
        (2, "withdrawn", "staff"),
    ]
    by_id = httpx.get(f"{consent.url}/consent/facts/{given['fact_id']}", headers=staff_headers("comms")).json()
    assert by_id["fact"]["state"] == "given"

    # Scope: another faculty's AK, and roles without consent access, are refused.
    assert proof(between, staff_headers("ak", "TNM")).status_code == 403
    assert proof(between, staff_headers("aab")).status_code == 403
    assert record(consent, member_id, "given").status_code == 200  # comms may record
    ak_gives = httpx.post(
        f"{consent.url}/consent/members/{member_id}/facts",
        json={"channel": "email", "purpose": "newsletter", "state": "given", "reason": "Asked at the fair"},
        headers=staff_headers("ak", "HH"),
    )
    assert ak_gives.status_code == 403  # consent given outside the platform: communications staff only
    other_ak = httpx.post(
        f"{consent.url}/consent/members/{member_id}/facts",
        json={"channel": "email", "purpose": "newsletter", "state": "withdrawn", "reason": "Asked at the fair"},
        headers=staff_headers("ak", "TNM"),
    )
    assert other_ak.status_code == 403
    assert proof(between, {"Authorization": "Bearer forged.token"}).status_code == 401
    assert (
        httpx.get(f"{consent.url}/consent/members/no-such-member/history", headers=staff_headers("comms")).status_code
        == 404
    )


async def test_bad_requests_get_precise_answers_and_record_nothing(
    stack: Stack, topic_prefix: str, consent: ServiceProcess, consent_conn: asyncpg.Connection
) -> None:
    member = member_registered()
    member_id = member["data"]["member_id"]
    await register(stack, topic_prefix, consent_conn, member)
    url = f"{consent.url}/consent/members/{member_id}"

    unknown_purpose = httpx.get(
        f"{url}/proof",
        params={"channel": "email", "purpose": "lottery", "at": datetime.now(UTC).isoformat()},
        headers=staff_headers("comms"),
    )
    assert unknown_purpose.status_code == 422
    [problem] = unknown_purpose.json()["detail"]
    assert problem["loc"] == ["query", "purpose"]
    assert problem["ctx"]["expected"] == ["newsletter", "events", "evu", "research", "career", "networks"]

    unknown_channel = httpx.get(
        f"{url}/proof",
        params={"channel": "fax", "purpose": "newsletter", "at": datetime.now(UTC).isoformat()},
        headers=staff_headers("comms"),
    )
    assert unknown_channel.status_code == 422
    assert "'email' or 'sms'" in unknown_channel.text

    naive_time = httpx.get(
        f"{url}/proof",
        params={"channel": "email", "purpose": "newsletter", "at": "2026-01-01T10:00:00"},
        headers=staff_headers("comms"),
    )
    assert naive_time.status_code == 422

    no_reason = record(consent, member_id, "given", reason="")
    assert no_reason.status_code == 422
    assert no_reason.json()["detail"][0]["loc"] == ["body", "reason"]
    bad_purpose = httpx.post(
        f"{url}/facts",
        json={"channel": "email", "purpose": "lottery", "state": "given", "reason": "Phone call"},
        headers=staff_headers("comms"),
    )
    assert bad_purpose.status_code == 422
    assert "allowed: newsletter, events, evu, research, career, networks" in bad_purpose.text
    assert await ledger(consent_conn, member_id) == []


async def test_import_records_what_changes_and_names_unknown_members(
    stack: Stack, topic_prefix: str, consent: ServiceProcess, consent_conn: asyncpg.Connection
) -> None:
    members = [member_registered() for _ in range(4)]
    await register(stack, topic_prefix, consent_conn, *members)
    ids = [m["data"]["member_id"] for m in members]
    # The fourth member already unsubscribed herself: an old list must not give consent back.
    unsubscribe = f"{consent.url}/unsubscribe/{issue_unsubscribe_token(SIGNER, ids[3], 'newsletter', 600)}"
    assert httpx.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    items = [{"member_id": i, "channel": "email", "purpose": "newsletter", "state": "given"} for i in ids]
    items.append({"member_id": "not-a-member", "channel": "email", "purpose": "newsletter", "state": "given"})
    # A withdrawal on a list always counts (here: events, which the first member had given by phone).
    httpx.post(
        f"{consent.url}/consent/members/{ids[0]}/facts",
        json={"channel": "email", "purpose": "events", "state": "given", "reason": "Phone call, case 26/0101"},
        headers=staff_headers("comms"),
    )
    items.append({"member_id": ids[0], "channel": "email", "purpose": "events", "state": "withdrawn"})
    body = {"evidence": "TNM newsletter list 2024 (double opt-in by the list tool)", "items": items}
    url = f"{consent.url}/consent/import"

    assert httpx.post(url, json=body, headers=staff_headers("ak", "TNM")).status_code == 403
    first = httpx.post(url, json=body, headers=staff_headers("comms")).json()
    assert first == {"recorded": 4, "unchanged": 0, "kept_existing": 1, "unknown_members": ["not-a-member"]}
    again = httpx.post(url, json=body, headers=staff_headers("comms")).json()
    assert again == {"recorded": 0, "unchanged": 4, "kept_existing": 1, "unknown_members": ["not-a-member"]}
    rows = await consent_conn.fetch("SELECT source, reason, actor FROM ledger WHERE source = 'import'")
    assert {(r["source"], r["reason"], r["actor"]) for r in rows} == {("import", body["evidence"], "tester")}
    assert len(rows) == 4
    events = await consent_conn.fetchval(
        "SELECT state FROM current_consent WHERE member_id = $1 AND purpose = 'events'", ids[0]
    )
    assert events == "withdrawn"
    state = await consent_conn.fetchval("SELECT state FROM current_consent WHERE member_id = $1", ids[3])
    assert state == "withdrawn"

    too_many = {"evidence": "a list", "items": items * 2501}
    assert httpx.post(url, json=too_many, headers=staff_headers("comms")).status_code == 422
