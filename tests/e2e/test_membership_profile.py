"""The self-service profile against the real service: validation with precise
messages, contact changes published as sealed `member-updated`, and volunteer
offers published once per effective change with a per-member sequence."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.e2e.consent_helpers import outbox_drained, page_text, started
from tests.e2e.profile_helpers import alumna, csrf_of, events_on, graduate, member_client
from tests.stack import ServiceProcess, Stack

pytestmark = pytest.mark.real

VALID = {"email": "kari@example.no", "phone": "912 34 567", "language": "nb", "employer": "", "job_title": ""}


@pytest.fixture
async def member(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> str:
    await started(membership_service)
    ids = await graduate(stack, topic_prefix, membership_conn, alumna("700001", email="kari.fs@example.no"))
    return ids["700001"]


async def _stored(conn: asyncpg.Connection, member_id: str) -> tuple[str | None, str | None, str]:
    row = await conn.fetchrow("SELECT email, phone, contact_source FROM members WHERE member_id = $1", member_id)
    assert row is not None
    return row["email"], row["phone"], row["contact_source"]


async def test_without_a_session_browsers_go_to_login_and_scripts_get_401(
    membership_service: ServiceProcess, member: str
) -> None:
    async with httpx.AsyncClient(base_url=membership_service.url) as anonymous:
        page = await anonymous.get("/profile", headers={"Accept": "text/html"})
        assert (page.status_code, page.headers["location"]) == (303, "/login")
        assert (await anonymous.get("/profile", headers={"Accept": "application/json"})).status_code == 401
        assert (await anonymous.post("/profile", json={"phone": "91234567"})).status_code == 401


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"email": "kari.example.no"}, "email", "needs exactly one @"),
        ({"email": "kari@localhost"}, "email", "must be a domain with a dot"),
        ({"email": ""}, "email", "we send login links to it"),
        ({"email": "k" * 250 + "@example.no"}, "email", "at most 254 characters (you entered 261)"),
        ({"phone": "912-34-56x"}, "phone", "only digits, spaces, hyphens and a leading +"),
        ({"phone": "912 345"}, "phone", "A Norwegian number has 8 digits (you entered 6)"),
        ({"phone": "+47 912 34 56"}, "phone", "8 digits after the country code (you entered 7)"),
        ({"phone": "+1 234"}, "phone", "8 to 15 digits (you entered 4)"),
        ({"employer": "x" * 201}, "employer", "at most 200 characters (you entered 201)"),
        ({"job_title": "Leder\u202e"}, "job_title", "characters that cannot be shown"),
        ({"language": "sv"}, "language", "Choose bokmål or English"),
    ],
)
async def test_bad_fields_get_a_422_naming_the_field_and_nothing_is_saved(
    membership_service: ServiceProcess,
    membership_conn: asyncpg.Connection,
    member: str,
    changes: dict[str, str],
    field: str,
    message: str,
) -> None:
    before = await _stored(membership_conn, member)
    async with member_client(membership_service, member) as client:
        answer = await client.post("/profile", json={**VALID, **changes, "offers": ["mentor"]})
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["body", field]
    assert message in problem["msg"]
    assert await _stored(membership_conn, member) == before
    assert await membership_conn.fetchval("SELECT count(*) FROM volunteer_offers") == 0


async def test_the_html_form_shows_each_error_beside_its_field_in_the_member_s_language(
    membership_service: ServiceProcess, membership_conn: asyncpg.Connection, member: str
) -> None:
    async with member_client(membership_service, member) as client:
        csrf = await csrf_of(client)
        form = {**VALID, "csrf": csrf, "email": "kari@@example.no", "phone": "12", "employer": "USN", "offer": "mentor"}
        answer = await client.post("/profile", data=form, headers={"Accept": "text/html"})
        assert answer.status_code == 422
        text = page_text(answer)
        assert "Profilen er ikke lagret" in text
        assert 'id="error-email"' in answer.text
        assert 'id="error-phone"' in answer.text
        assert "Et norsk nummer har 8 sifre (du skrev 2)" in text
        assert 'value="kari@@example.no"' in answer.text  # what she typed stays in the form
        assert 'id="offer-mentor" checked' in answer.text
        # A form without the session's CSRF token, or with a box no page offers, is refused as a whole.
        no_csrf = await client.post("/profile", data={**VALID}, headers={"Accept": "text/html"})
        assert no_csrf.status_code == 403
        odd = await client.post("/profile", data={**VALID, "csrf": csrf, "offer": "astronaut"})
        assert odd.status_code == 422
        assert "unknown offer: astronaut" in odd.text
    assert await _stored(membership_conn, member) == ("kari.fs@example.no", None, "fs")


async def test_a_contact_change_updates_the_member_and_publishes_one_sealed_member_updated(
    stack: Stack,
    topic_prefix: str,
    membership_service: ServiceProcess,
    membership_conn: asyncpg.Connection,
    member: str,
) -> None:
    async with member_client(membership_service, member) as client:
        changes = {**VALID, "phone": "+47 912 34 567", "language": "en", "employer": "Kongsberg  Maritime"}
        saved = await client.post("/profile", json={**changes, "interests": ["career-guidance", "discounts"]})
        assert saved.status_code == 200, saved.text
        assert saved.json()["changed"] == ["email", "phone", "language", "employer", "interests"]
        again = await client.post("/profile", json=changes)  # the same again: nothing new to publish
        assert again.json()["changed"] == []
        shown = (await client.get("/profile", headers={"Accept": "application/json"})).json()
    assert shown["phone"] == "+4791234567"
    assert shown["employer"] == "Kongsberg Maritime"
    assert shown["interests"] == ["career-guidance", "discounts"]
    assert await _stored(membership_conn, member) == ("kari@example.no", "+4791234567", "member")
    await outbox_drained(membership_conn)
    updates = await events_on(stack, topic_prefix + "member-updated", member)
    assert len(updates) == 1
    data = updates[0]["data"]
    assert data["changed"] == ["email", "phone", "language"]
    assert data["language"] == "en"
    assert data["email"].startswith("pd1.")
    assert data["phone"].startswith("pd1.")
    assert b"kari@example.no" not in str(updates).encode()


async def test_offers_publish_once_per_effective_change_with_an_increasing_sequence(
    stack: Stack,
    topic_prefix: str,
    membership_service: ServiceProcess,
    membership_conn: asyncpg.Connection,
    member: str,
) -> None:
    async with member_client(membership_service, member) as client:
        first = await client.post("/profile", json={"offers": ["mentor", "guest-lecture"]})
        assert first.json()["changed"] == ["offers"]
        assert (await client.post("/profile", json={"offers": ["guest-lecture", "mentor"]})).json()["changed"] == []
        csrf = await csrf_of(client)
        form = {**VALID, "email": "kari.fs@example.no", "csrf": csrf, "offer": ["guest-lecture", "thesis-topics"]}
        page = await client.post("/profile", data=form, headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "Profilen er lagret." in page_text(page)
    await outbox_drained(membership_conn)
    offered = await events_on(stack, topic_prefix + "volunteer-offered", member)
    withdrawn = await events_on(stack, topic_prefix + "volunteer-withdrawn", member)
    assert [(e["sequence"], e["data"]["offer_type"]) for e in offered] == [
        (1, "mentor"),
        (2, "guest-lecture"),
        (4, "thesis-topics"),
    ]
    assert [(e["sequence"], e["data"]["offer_type"]) for e in withdrawn] == [(3, "mentor")]
    for event in offered + withdrawn:
        assert event["subject"] == event["data"]["member_id"] == member
        assert event["data"]["sequence"] == event["sequence"]
        assert (event["data"]["faculties"], event["data"]["programme_codes"]) == (["TNM"], ["BSL"])
    standing = await membership_conn.fetch(
        "SELECT offer_type FROM volunteer_offers WHERE member_id = $1 ORDER BY 1", member
    )
    assert [r[0] for r in standing] == ["guest-lecture", "thesis-topics"]
