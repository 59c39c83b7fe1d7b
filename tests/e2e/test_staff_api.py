"""The staff read API: faculty scoping, validation and authentication."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from alumni_kit.auth import TokenSigner, issue_staff_token, parse_keys
from tests.conftest import SIGNING_KEYS
from tests.e2e.expect import member_count
from tests.e2e.graduations import graduation
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish

pytestmark = pytest.mark.real
SIGNER = TokenSigner(parse_keys(SIGNING_KEYS))


def staff_headers(role: str, faculty: str | None = None, ttl: int = 600) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_staff_token(SIGNER, 'tester', role, faculty, ttl)}"}  # type: ignore[arg-type]


@pytest.fixture
async def three_members(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> ServiceProcess:
    events = [
        graduation("api-1", "800001", "BSL", "bachelor", "2020-06-15", "TNM"),
        graduation("api-2", "800002", "BØL", "bachelor", "2021-06-15", "HH"),
        graduation("api-3", "800003", "BØL", "bachelor", "2020-12-15", "HH"),
    ]
    membership_service.start()
    await membership_service.wait_ready()
    await publish(stack.bootstrap, topic_prefix + "graduated", [event_bytes(e) for e in events])

    async def three() -> bool:
        return await member_count(membership_conn) == 3

    await eventually(three, what="three members")
    return membership_service


async def test_comms_sees_every_faculty_and_can_filter(three_members: ServiceProcess) -> None:
    url = f"{three_members.url}/members"
    answer = httpx.get(url, headers=staff_headers("comms"))
    assert answer.headers["cache-control"] == "no-store"  # personal data: no cache may keep it
    everyone = answer.json()
    assert everyone["total"] == 3
    hh_2020 = httpx.get(url, params={"faculty": "HH", "graduation_year": 2020}, headers=staff_headers("comms")).json()
    assert [m["student_number"] for m in hh_2020["items"]] == ["800003"]
    by_programme = httpx.get(url, params={"programme_code": "BØL"}, headers=staff_headers("comms")).json()
    assert by_programme["total"] == 2
    # The advisory board reads analytics, not people.
    board = httpx.get(url, params={"programme_code": "BØL"}, headers=staff_headers("aab"))
    assert board.status_code == 403
    assert httpx.get(f"{url}/{everyone['items'][0]['member_id']}", headers=staff_headers("aab")).status_code == 403


async def test_an_alumnikontakt_sees_only_her_faculty(three_members: ServiceProcess) -> None:
    url = f"{three_members.url}/members"
    ak_hh = staff_headers("ak", "HH")
    mine = httpx.get(url, headers=ak_hh).json()
    assert sorted(m["student_number"] for m in mine["items"]) == ["800002", "800003"]
    assert httpx.get(url, params={"faculty": "TNM"}, headers=ak_hh).status_code == 403
    tnm_member = httpx.get(url, params={"faculty": "TNM"}, headers=staff_headers("comms")).json()["items"][0]
    assert httpx.get(f"{url}/{tnm_member['member_id']}", headers=ak_hh).status_code == 403
    assert httpx.get(f"{url}/{tnm_member['member_id']}", headers=staff_headers("at", "TNM")).status_code == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [({"graduation_year": 1800}, "graduation_year"), ({"faculty": "XYZ"}, "faculty"), ({"limit": 0}, "limit")],
)
async def test_invalid_queries_get_422_naming_the_field(
    three_members: ServiceProcess, params: dict[str, object], field: str
) -> None:
    response = httpx.get(f"{three_members.url}/members", params=params, headers=staff_headers("comms"))
    assert response.status_code == 422
    assert field in str(response.json()["detail"])


async def test_missing_forged_or_expired_tokens_get_401(three_members: ServiceProcess) -> None:
    url = f"{three_members.url}/members"
    assert httpx.get(url).status_code == 401
    forged = staff_headers("comms")["Authorization"][:-3] + "abc"
    assert httpx.get(url, headers={"Authorization": forged}).status_code == 401
    assert httpx.get(url, headers=staff_headers("comms", ttl=-1)).status_code == 401
    other_key = TokenSigner(parse_keys("test:another-key-entirely-different"))
    foreign = issue_staff_token(other_key, "x", "comms", None, 600)
    assert httpx.get(url, headers={"Authorization": f"Bearer {foreign}"}).status_code == 401


async def test_unknown_member_is_404_and_a_malformed_id_is_422(three_members: ServiceProcess) -> None:
    url = f"{three_members.url}/members"
    missing = httpx.get(f"{url}/00000000-0000-4000-8000-000000000000", headers=staff_headers("comms"))
    assert missing.status_code == 404
    assert httpx.get(f"{url}/not-a-uuid", headers=staff_headers("comms")).status_code == 422


async def test_health_readiness_and_metrics(three_members: ServiceProcess) -> None:
    assert httpx.get(f"{three_members.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{three_members.url}/readyz").json()
    assert ready == {"ready": True, "checks": {"database": True, "kafka": True, "consumers": True}}
    metrics = httpx.get(f"{three_members.url}/metrics").text
    assert 'membership_member_changes_total{kind="registered"} 3.0' in metrics
    assert "alumni_outbox_backlog_messages" in metrics
    assert "Ødegård" not in metrics
