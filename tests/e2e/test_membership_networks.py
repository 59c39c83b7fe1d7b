"""Faculty and programme networks against the real service: who may create and
see them (403), precise 422s, members joining and leaving, and contact details in
a member list only with consent (facts published on the real consent topics)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.e2e.consent_helpers import staff_headers, started
from tests.e2e.mailer_helpers import consent_fact
from tests.e2e.profile_helpers import alumna, csrf_of, graduate, member_client
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish

pytestmark = pytest.mark.real

LINKEDIN = "https://www.linkedin.com/groups/8812345"


@pytest.fixture
async def members(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> dict[str, str]:
    await started(membership_service)
    return await graduate(
        stack,
        topic_prefix,
        membership_conn,
        alumna("710001", "BSL", "TNM", email="ingrid@example.no", phone="91234567"),
        alumna("710002", "BSL", "TNM", email="ola@example.no"),
        alumna("710003", "BØL", "HH", email="per@example.no"),
    )


def _create(service: ServiceProcess, who: dict[str, str], **body: Any) -> httpx.Response:
    return httpx.post(f"{service.url}/networks", json=body, headers=who)


async def test_who_may_create_networks_and_what_is_refused(
    membership_service: ServiceProcess, members: dict[str, str]
) -> None:
    made = _create(
        membership_service, staff_headers("comms"), name="Maritime alumni", faculty="TNM", external_url=LINKEDIN
    )
    assert made.status_code == 201, made.text
    assert made.json()["external_url"] == LINKEDIN
    assert made.json()["member_count"] == 0
    assert _create(membership_service, staff_headers("ak", "HH"), name="HH Oslo", faculty="HH").status_code == 201
    other_faculty = _create(membership_service, staff_headers("ak", "HH"), name="Sneaky", faculty="TNM")
    assert other_faculty.status_code == 403
    assert "own faculty only (HH)" in other_faculty.text
    assert _create(membership_service, staff_headers("at", "TNM"), name="Team", faculty="TNM").status_code == 403
    duplicate = _create(membership_service, staff_headers("ak", "TNM"), name="maritime ALUMNI", faculty="TNM")
    assert duplicate.status_code == 409
    assert _create(membership_service, {}, name="x y", faculty="TNM").status_code == 401


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "   ", "faculty": "TNM"}, "name", "at least 2 characters"),
        ({"name": "A" * 121, "faculty": "TNM"}, "name", "at most 120 characters"),
        ({"name": "Net", "faculty": "USN"}, "faculty", "'HH', 'TNM', 'HS' or 'HIU'"),
        ({"name": "Net", "faculty": "TNM", "external_url": "http://fb.com/g/1"}, "external_url", "https://"),
        ({"name": "Net", "faculty": "TNM", "external_url": "javascript:alert(1)"}, "external_url", "https://"),
        ({"name": "Net", "faculty": "TNM", "programme_code": "B SL"}, "programme_code", "pattern"),
        ({"name": "Net", "faculty": "TNM", "owner": "me"}, "owner", "Extra inputs"),
    ],
)
async def test_invalid_networks_get_a_422_naming_the_field(
    membership_service: ServiceProcess, members: dict[str, str], body: dict[str, str], field: str, message: str
) -> None:
    answer = _create(membership_service, staff_headers("comms"), **body)
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert problem["loc"][-1] == field
    assert message in problem["msg"]


async def test_staff_see_only_their_faculty_s_networks_and_members(
    membership_service: ServiceProcess, members: dict[str, str]
) -> None:
    tnm = _create(membership_service, staff_headers("comms"), name="Maritime alumni", faculty="TNM").json()
    _create(membership_service, staff_headers("comms"), name="Økonomi", faculty="HH")
    url = f"{membership_service.url}/networks"
    assert httpx.get(url, headers=staff_headers("comms")).json()["total"] == 2
    assert [n["name"] for n in httpx.get(url, headers=staff_headers("at", "HH")).json()["items"]] == ["Økonomi"]
    assert httpx.get(url, params={"faculty": "TNM"}, headers=staff_headers("ak", "HH")).status_code == 403
    members_url = f"{url}/{tnm['network_id']}/members"
    assert httpx.get(members_url, headers=staff_headers("ak", "HH")).status_code == 403
    assert httpx.get(members_url, headers=staff_headers("at", "TNM")).json()["total"] == 0
    assert (
        httpx.get(f"{url}/00000000-0000-4000-8000-000000000000/members", headers=staff_headers("comms")).status_code
        == 404
    )


async def test_members_join_and_leave_networks_of_their_faculties(
    membership_service: ServiceProcess, membership_conn: asyncpg.Connection, members: dict[str, str]
) -> None:
    tnm = _create(
        membership_service, staff_headers("comms"), name="Maritime alumni", faculty="TNM", external_url=LINKEDIN
    )
    programme = _create(
        membership_service, staff_headers("comms"), name="BSL-kullet", faculty="TNM", programme_code="BSL"
    )
    other = _create(
        membership_service, staff_headers("comms"), name="Master nautikk", faculty="TNM", programme_code="MNAUT"
    )
    hh = _create(membership_service, staff_headers("comms"), name="Økonomi", faculty="HH")
    ingrid = members["710001"]
    async with member_client(membership_service, ingrid) as client:
        page = await client.get("/networks", headers={"Accept": "text/html"})
        assert "Maritime alumni" in page.text
        assert "BSL-kullet" in page.text
        assert LINKEDIN in page.text
        assert "Økonomi" not in page.text
        assert "Master nautikk" not in page.text
        csrf = await csrf_of(client, "/networks")
        for network in (tnm, programme):
            joined = await client.post(f"/networks/{network.json()['network_id']}/join", data={"csrf": csrf})
            assert joined.status_code == 200
            assert 'id="joined-' in joined.text
        again = await client.post(f"/networks/{tnm.json()['network_id']}/join", data={"csrf": csrf, "lang": "en"})
        assert "You joined Maritime alumni." in again.text
        for refused in (hh, other):
            answer = await client.post(f"/networks/{refused.json()['network_id']}/join", data={"csrf": csrf})
            assert answer.status_code == 404
        assert (await client.post(f"/networks/{tnm.json()['network_id']}/join", data={})).status_code == 403
        left = await client.post(f"/networks/{programme.json()['network_id']}/leave", data={"csrf": csrf})
        assert left.status_code == 200
        assert "Du har forlatt BSL-kullet." in left.text
    rows = await membership_conn.fetch(
        "SELECT n.name FROM network_members nm JOIN networks n USING (network_id) WHERE member_id = $1", ingrid
    )
    assert [r[0] for r in rows] == ["Maritime alumni"]


async def test_a_member_list_shows_contact_details_only_with_consent_for_networks(
    stack: Stack,
    topic_prefix: str,
    membership_service: ServiceProcess,
    membership_conn: asyncpg.Connection,
    members: dict[str, str],
) -> None:
    network = _create(membership_service, staff_headers("comms"), name="Maritime alumni", faculty="TNM").json()
    ingrid, ola = members["710001"], members["710002"]
    await membership_conn.execute(
        "INSERT INTO network_members (network_id, member_id, joined_at) VALUES ($1, $2, now()), ($1, $3, now() + '1s')",
        network["network_id"],
        ingrid,
        ola,
    )
    # Ingrid consents to e-mail about networks; Ola to newsletters only, which does not count here.
    facts = [consent_fact(ingrid, 1, "given", "networks"), consent_fact(ola, 1, "given", "newsletter")]
    await publish(stack.bootstrap, topic_prefix + "consent-given", [event_bytes(f) for f in facts])

    async def consents_arrived() -> bool:
        return bool(await membership_conn.fetchval("SELECT count(*) FROM consent_view") == 2)

    await eventually(consents_arrived, what="the consent view to hold both facts")
    url = f"{membership_service.url}/networks/{network['network_id']}/members"
    listed = httpx.get(url, headers=staff_headers("ak", "TNM")).json()
    assert listed["total"] == 2
    assert [(m["member_id"], m["email"], m["phone"]) for m in listed["items"]] == [
        (ingrid, "ingrid@example.no", None),  # no consent for SMS: no phone
        (ola, None, None),
    ]
    page = httpx.get(url, params={"limit": 1, "offset": 1}, headers=staff_headers("comms")).json()
    assert [m["member_id"] for m in page["items"]] == [ola]
    assert page["total"] == 2
    # She withdraws (a newer sequence, on the other topic): her address disappears from the list.
    await publish(
        stack.bootstrap,
        topic_prefix + "consent-withdrawn",
        [event_bytes(consent_fact(ingrid, 2, "withdrawn", "networks"))],
    )

    async def hidden() -> bool:
        return httpx.get(url, headers=staff_headers("comms")).json()["items"][0]["email"] is None

    await eventually(hidden, what="the withdrawn address to be hidden")
