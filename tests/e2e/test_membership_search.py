"""Staff search against the real service: every filter, paging, and the faculty
scope (an AK sees a member with degrees in two faculties, but only her faculty's)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.e2e.consent_helpers import staff_headers, started, token_of
from tests.e2e.profile_helpers import alumna, graduate, member_client
from tests.e2e.signup_helpers import mails_for
from tests.stack import ServiceProcess, Stack

pytestmark = pytest.mark.real


@pytest.fixture
async def alumni(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> dict[str, str]:
    await started(membership_service)
    ids = await graduate(
        stack,
        topic_prefix,
        membership_conn,
        alumna("720001", "BSL", "TNM", "2019-06-14", campus="Vestfold", email="a720001@example.no"),
        alumna("720002", "BSL", "TNM", "2021-06-14", campus="Vestfold", email="a720002@example.no"),
        alumna("720003", "BØL", "HH", "2021-06-14", campus="Bø", email="a720003@example.no"),
        # Two degrees in two faculties: TNM's AK and HH's AK each see her, with their own degree only.
        alumna("720004", "BSL", "TNM", "2018-06-14", campus="Kongsberg", email="a720004@example.no"),
        alumna("720004", "MØL", "HH", "2023-06-14", campus="Ringerike", email="a720004@example.no"),
    )
    profiles: dict[str, dict[str, Any]] = {
        "720001": {"interests": ["career-guidance"], "offers": ["mentor", "guest-lecture"]},
        "720002": {"interests": ["discounts"], "offers": []},
        "720003": {"interests": ["career-guidance", "social-events"], "offers": ["mentor"]},
        "720004": {"interests": [], "offers": ["thesis-topics"]},
    }
    for sn, body in profiles.items():
        async with member_client(membership_service, ids[sn]) as client:
            assert (await client.post("/profile", json=body)).status_code == 200
    return ids


def _search(service: ServiceProcess, who: dict[str, str], **params: Any) -> httpx.Response:
    return httpx.get(f"{service.url}/members", params=params, headers=who)


def _numbers(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return sorted(m["student_number"] for m in answer.json()["items"])  # one batch of members: one created_at


async def test_filters_combine_and_list_values_mean_any_of(
    membership_service: ServiceProcess, alumni: dict[str, str]
) -> None:
    comms = staff_headers("comms")
    assert _numbers(_search(membership_service, comms, offer="mentor")) == ["720001", "720003"]
    assert _numbers(_search(membership_service, comms, offer=["mentor", "thesis-topics"])) == [
        "720001",
        "720003",
        "720004",
    ]
    assert _numbers(_search(membership_service, comms, interest="career-guidance", faculty="TNM")) == ["720001"]
    assert _numbers(_search(membership_service, comms, campus="vestfold")) == ["720001", "720002"]
    years = _search(membership_service, comms, graduation_year_from=2019, graduation_year_to=2021, programme_code="BSL")
    assert _numbers(years) == ["720001", "720002"]
    # Programme, year and campus must hold for the same degree: her 2018 BSL was in Kongsberg, not Ringerike.
    assert _numbers(_search(membership_service, comms, programme_code="BSL", campus="Ringerike")) == []
    assert _numbers(_search(membership_service, comms, status="alumni", graduation_year=2023)) == ["720004"]


async def test_results_are_paged_with_the_total(membership_service: ServiceProcess, alumni: dict[str, str]) -> None:
    pages = [_search(membership_service, staff_headers("comms"), limit=3, offset=o).json() for o in (0, 3)]
    assert [p["total"] for p in pages] == [4, 4]
    assert [len(p["items"]) for p in pages] == [3, 1]
    seen = [m["student_number"] for p in pages for m in p["items"]]
    assert sorted(seen) == ["720001", "720002", "720003", "720004"]


async def test_an_alumnikontakt_sees_her_faculty_s_members_and_degrees_only(
    membership_service: ServiceProcess, alumni: dict[str, str]
) -> None:
    hh = _search(membership_service, staff_headers("ak", "HH")).json()
    by_number = {m["student_number"]: m for m in hh["items"]}
    assert sorted(by_number) == ["720003", "720004"]
    assert hh["total"] == 2
    both = by_number["720004"]
    assert [p["programme_code"] for p in both["programmes"]] == ["MØL"]
    assert both["faculties"] == ["HH"]
    assert both["volunteer_offers"] == ["thesis-topics"]
    # Filters cannot reach outside her faculty: her TNM degree does not match for the HH AK.
    assert _numbers(_search(membership_service, staff_headers("ak", "HH"), programme_code="BSL")) == []
    assert _search(membership_service, staff_headers("at", "HH"), faculty="TNM").status_code == 403
    one = httpx.get(f"{membership_service.url}/members/{alumni['720004']}", headers=staff_headers("at", "TNM")).json()
    assert [p["programme_code"] for p in one["programmes"]] == ["BSL"]
    tnm_only = httpx.get(f"{membership_service.url}/members/{alumni['720001']}", headers=staff_headers("ak", "HH"))
    assert tnm_only.status_code == 403


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"graduation_year_from": 2022, "graduation_year_to": 2020}, "graduation_year_from (2022) is after"),
        ({"graduation_year": 2020, "graduation_year_to": 2021}, "not both"),
        ({"offer": "astronaut"}, "offer"),
        ({"interest": "golf"}, "interest"),
        ({"status": "student"}, "status"),
        ({"limit": 201}, "limit"),
    ],
)
async def test_invalid_searches_get_a_422_saying_why(
    membership_service: ServiceProcess, alumni: dict[str, str], params: dict[str, Any], message: str
) -> None:
    answer = _search(membership_service, staff_headers("comms"), **params)
    assert answer.status_code == 422
    assert message in str(answer.json()["detail"])


async def test_a_pre_alumna_belongs_to_no_faculty_yet_so_only_comms_find_her(
    stack: Stack,
    topic_prefix: str,
    membership_service: ServiceProcess,
    membership_conn: asyncpg.Connection,
    alumni: dict[str, str],
) -> None:
    async with httpx.AsyncClient(base_url=membership_service.url) as client:
        form = {"student_number": "730001", "private_email": "pia@example.no", "given_name": "Pia", "family_name": "Ås"}
        assert (await client.post("/signup", json=form)).status_code == 202
        signup_id = await membership_conn.fetchval("SELECT signup_id::text FROM signups")
        [mail] = await mails_for(stack, topic_prefix, signup_id, membership_service)
        confirmed = await client.post("/signup/confirm", data={"token": token_of(mail["action_url"])})
        assert confirmed.status_code == 200
    comms = staff_headers("comms")
    assert _numbers(_search(membership_service, comms, status="pre-alumni")) == ["730001"]
    assert "730001" in _numbers(_search(membership_service, comms))
    assert "730001" not in _numbers(_search(membership_service, comms, programme_code="BSL"))
    assert "730001" not in _numbers(_search(membership_service, comms, faculty="TNM"))
    assert _search(membership_service, comms, status="pre-alumni").json()["total"] == 1
    ak = staff_headers("ak", "TNM")
    assert _numbers(_search(membership_service, ak, status="pre-alumni")) == []
    one = httpx.get(f"{membership_service.url}/members/{signup_id}", headers=comms)
    assert one.status_code == 200
    assert one.json()["status"] == "pre-alumni"
    assert httpx.get(f"{membership_service.url}/members/{signup_id}", headers=ak).status_code == 403
