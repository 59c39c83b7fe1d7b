"""Pre-alumni sign-up on the real broker and database: a student proves her student
number by a link to her student address, becomes a pre-alumni member, and her later
graduation (a plain `graduated` event) makes her an alumna, the same member."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from alumni_kit.auth import issue_member_link
from tests.e2e.consent_helpers import SIGNER, outbox_drained, page_text, started, token_of
from tests.e2e.graduations import graduation
from tests.e2e.signup_helpers import mails_for, opened_events, tampered
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish

pytestmark = pytest.mark.real

SIGNUP = {
    "student_number": "234567",
    "private_email": "ingrid.berg@example.no",
    "given_name": "Ingrid",
    "family_name": "Berg",
    "language": "en",
}


async def _sign_up(client: httpx.AsyncClient, **changes: str) -> httpx.Response:
    return await client.post("/signup", data={**SIGNUP, **changes})


async def _confirm(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/signup/confirm", data={"token": token, "lang": "en"})


async def test_a_pre_alumna_signs_up_then_graduates_into_one_alumna_with_her_history(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    service = await started(membership_service)
    async with httpx.AsyncClient(base_url=service.url) as client:
        asked = await _sign_up(client)
        assert asked.status_code == 202, asked.text
        assert "234567@usn.no" in page_text(asked)
        signup_id = await membership_conn.fetchval("SELECT signup_id::text FROM signups")

        [mail] = await mails_for(stack, topic_prefix, signup_id, service)
        assert (mail["kind"], mail["to_address"], mail["language"]) == ("email-verification", "234567@usn.no", "en")
        token = token_of(mail["action_url"])

        shown = await client.get("/signup/confirm", params={"token": token, "lang": "en"})
        assert shown.status_code == 200
        assert "ingrid.berg@example.no" in page_text(shown)
        assert 'id="confirm"' in shown.text
        assert await membership_conn.fetchval("SELECT count(*) FROM members") == 0, "a GET must not act"

        confirmed = await _confirm(client, token)
        assert confirmed.status_code == 200, confirmed.text
        assert "alumni_session" in confirmed.cookies
        assert 'id="logout"' in confirmed.text, "she is logged in: the page shows her menu"

    member = await membership_conn.fetchrow("SELECT member_id::text, status, email, student_number FROM members")
    assert dict(member) == {
        "member_id": signup_id,
        "status": "pre-alumni",
        "email": "ingrid.berg@example.no",
        "student_number": "234567",
    }
    await outbox_drained(membership_conn)
    [registered] = await opened_events(stack, topic_prefix, "member-registered", service, signup_id)
    assert (registered["data"]["status"], registered["data"]["email"]) == ("pre-alumni", "ingrid.berg@example.no")

    # FS reports her degree, with the student address it knows: her own private address stays.
    event = graduation("grad-234567", "234567", faculty="HS", email="234567@usn.no")
    await publish(stack.bootstrap, topic_prefix + "graduated", [event_bytes(event)])

    async def alumna() -> asyncpg.Record | None:
        row = await membership_conn.fetchrow("SELECT member_id::text, status, email FROM members")
        return row if row["status"] == "alumni" else None

    now = await eventually(alumna, what="the pre-alumna to become an alumna")
    assert (now["member_id"], now["email"]) == (signup_id, "ingrid.berg@example.no")
    assert await membership_conn.fetchval("SELECT count(*) FROM members") == 1
    history = await membership_conn.fetch(
        "SELECT what, source_event_id FROM member_history WHERE member_id = $1 ORDER BY at, id", signup_id
    )
    assert [(h["what"], h["source_event_id"]) for h in history] == [
        ("signed-up", None),
        ("status", "grad-234567"),
        ("graduated", "grad-234567"),
    ]
    await outbox_drained(membership_conn)
    [updated] = await opened_events(stack, topic_prefix, "member-updated", service, signup_id)
    assert updated["data"]["status"] == "alumni"
    assert set(updated["data"]["changed"]) >= {"status", "programmes"}
    assert updated["data"]["faculties"] == ["HS"]


async def test_a_second_sign_up_and_a_replayed_link_record_nothing_twice(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    service = await started(membership_service)
    async with httpx.AsyncClient(base_url=service.url) as client:
        assert (await _sign_up(client)).status_code == 202
        again = await client.post("/signup", json={**SIGNUP, "private_email": "other@example.no"})
        assert again.status_code == 409
        assert "already been sent" in again.json()["detail"]

        signup_id = await membership_conn.fetchval("SELECT signup_id::text FROM signups")
        token = token_of((await mails_for(stack, topic_prefix, signup_id, service))[0]["action_url"])
        assert (await _confirm(client, token)).status_code == 200

        replayed = await _confirm(client, token)
        assert replayed.status_code == 409
        assert "already used" in page_text(replayed)
        assert (await client.get("/signup/confirm", params={"token": token})).status_code == 409

        member_now = await client.post("/signup", json=SIGNUP)
        assert member_now.status_code == 409
        assert "already a member" in member_now.json()["detail"]
        # Logins go by e-mail: another student number with her address would lock one of them out.
        same_address = await client.post("/signup", json={**SIGNUP, "student_number": "2345678"})
        assert same_address.status_code == 409
        assert "already belongs to a member" in same_address.json()["detail"]

    assert await membership_conn.fetchval("SELECT count(*) FROM members") == 1
    assert await membership_conn.fetchval("SELECT count(*) FROM signups") == 1
    await outbox_drained(membership_conn)
    assert len(await opened_events(stack, topic_prefix, "member-registered", service)) == 1
    assert len(await opened_events(stack, topic_prefix, "transactional-mail-requested", service)) == 1


async def test_a_student_number_that_cannot_be_verified_is_refused_with_a_precise_message(
    topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    service = await started(membership_service)
    async with httpx.AsyncClient(base_url=service.url) as client:
        form = await client.get("/signup", params={"lang": "en"})
        assert form.status_code == 200
        assert "The digits before @usn.no" in page_text(form)
        letters = await client.post("/signup", json={**SIGNUP, "student_number": "ab1234"})
        assert letters.status_code == 422
        assert "digits only" in letters.json()["detail"]
        too_short = await _sign_up(client, student_number="123")
        assert too_short.status_code == 422
        assert "digits only" in page_text(too_short)
        assert 'value="123"' in too_short.text, "the form keeps what she typed"

        student_address = await client.post("/signup", json={**SIGNUP, "private_email": "234567@usn.no"})
        assert student_address.status_code == 422
        assert "not your student address" in student_address.json()["detail"]

        broken = await client.post("/signup", json={"student_number": "234567", "private_email": "not-an-address"})
        assert broken.status_code == 422
        problems = broken.json()["detail"]
        assert any(p.startswith("private_email:") for p in problems)
        assert any(p.startswith("given_name:") for p in problems)
        long_name = await client.post("/signup", json={**SIGNUP, "given_name": "x" * 101})
        assert long_name.status_code == 422
        assert any("given_name" in p and "100" in p for p in long_name.json()["detail"])

    assert await membership_conn.fetchval("SELECT count(*) FROM signups") == 0


async def test_forged_expired_and_foreign_links_are_refused_and_record_nothing(
    topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    service = await started(membership_service)
    async with httpx.AsyncClient(base_url=service.url) as client:
        assert (await _sign_up(client)).status_code == 202
        signup_id = await membership_conn.fetchval("SELECT signup_id::text FROM signups")
        genuine = issue_member_link(SIGNER, signup_id, "confirm-signup", 600, signup_id)
        expired = issue_member_link(SIGNER, signup_id, "confirm-signup", -1, signup_id)
        other_purpose = issue_member_link(SIGNER, signup_id, "login", 600, signup_id)

        assert (await _confirm(client, tampered(genuine))).status_code == 403
        assert (await client.get("/signup/confirm", params={"token": tampered(genuine)})).status_code == 403
        assert (await _confirm(client, other_purpose)).status_code == 403
        gone = await _confirm(client, expired)
        assert gone.status_code == 410
        assert "expired" in page_text(gone)
        assert (await client.get("/signup/confirm", params={"token": expired})).status_code == 410

    assert await membership_conn.fetchval("SELECT count(*) FROM members") == 0
    assert await membership_conn.fetchval("SELECT count(*) FROM signups WHERE confirmed_at IS NOT NULL") == 0


async def test_a_graduation_before_the_click_leaves_one_member_and_the_click_is_refused(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    service = await started(membership_service)
    async with httpx.AsyncClient(base_url=service.url) as client:
        assert (await _sign_up(client)).status_code == 202
        signup_id = await membership_conn.fetchval("SELECT signup_id::text FROM signups")
        token = token_of((await mails_for(stack, topic_prefix, signup_id, service))[0]["action_url"])
        await publish(stack.bootstrap, topic_prefix + "graduated", [event_bytes(graduation("g-early", "234567"))])

        async def registered() -> bool:
            return await membership_conn.fetchval("SELECT count(*) FROM members") == 1

        await eventually(registered, what="the graduate to be a member")
        late = await _confirm(client, token)
        assert late.status_code == 409
        assert "already a member" in page_text(late)

    assert await membership_conn.fetchval("SELECT status FROM members") == "alumni"
    assert await membership_conn.fetchval("SELECT count(*) FROM members") == 1


async def test_a_sign_up_whose_link_expired_unused_is_forgotten_and_she_may_sign_up_again(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    service = await started(membership_service)
    async with httpx.AsyncClient(base_url=service.url) as client:
        assert (await _sign_up(client, private_email="typo@example.no")).status_code == 202
        stale = await membership_conn.fetchval("SELECT signup_id FROM signups")
        assert await membership_conn.fetchval("SELECT count(*) FROM subject_keys WHERE subject_id = $1", stale) == 1
        # A day passes without the click (the row's expiry is what the link's expiry was).
        await membership_conn.execute("UPDATE signups SET expires_at = now() - interval '1 second'")
        assert (await _sign_up(client)).status_code == 202

    rows = await membership_conn.fetch("SELECT private_email FROM signups")
    assert [r["private_email"] for r in rows] == ["ingrid.berg@example.no"], "the stale sign-up is gone"
    # ...with the key that sealed its verification mail: that mail is unreadable on the topic now.
    assert await membership_conn.fetchval("SELECT count(*) FROM subject_keys WHERE subject_id = $1", stale) == 0
