"""The member-facing consent pages, used over plain HTTP: preference centre,
double opt-in, RFC 8058 one-click unsubscribe, and links that are not genuine."""

from __future__ import annotations

import base64
import html
import json
import re

import asyncpg
import httpx
import pytest

from alumni_kit.auth import TokenSigner, issue_member_link, issue_unsubscribe_token, parse_keys
from tests.e2e.consent_helpers import (
    SIGNER,
    checked_boxes,
    ledger,
    mails_for,
    member_registered,
    page_text,
    register,
    started,
    token_of,
)
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish, read_topic

UPDATED = "no.usn.alumni.member-updated.v1"

pytestmark = pytest.mark.real


@pytest.fixture
async def consent(consent_service: ServiceProcess) -> ServiceProcess:
    return await started(consent_service)


async def test_invitation_then_preferences_then_double_opt_in(
    stack: Stack, topic_prefix: str, consent: ServiceProcess, consent_conn: asyncpg.Connection
) -> None:
    member = member_registered(given_name="Åse")
    member_id = member["data"]["member_id"]
    await register(stack, topic_prefix, consent_conn, member)

    [invitation] = await mails_for(stack, topic_prefix, member_id, 1, consent)
    assert invitation["data"]["kind"] == "consent-invitation"
    assert invitation["data"]["to_address"] == "kari.nordmann@example.no"
    assert "Hei Åse!" in invitation["data"]["body_text"]
    link = invitation["data"]["action_url"]
    assert link in invitation["data"]["body_text"]

    shown = httpx.get(link)
    assert shown.status_code == 200
    assert checked_boxes(shown) == set()  # never assumed given
    assert "Nyhetsbrev" in page_text(shown)

    # Tick e-mail for two purposes and SMS for one: SMS is recorded at once, e-mail waits for the click.
    token = token_of(link)
    form = {"token": token, "lang": "nb", "email:newsletter": "on", "email:events": "on", "sms:events": "on"}
    saved = httpx.post(f"{consent.url}/preferences", data=form)
    assert saved.status_code == 200
    assert "bekrefte adressen din" in page_text(saved)
    assert await ledger(consent_conn, member_id) == [(1, "sms", "events", "given", "preference-centre")]
    assert checked_boxes(saved) == {"sms:events"}
    assert "venter på bekreftelse" in page_text(saved)

    invitation_and_confirmation = await mails_for(stack, topic_prefix, member_id, 2, consent)
    confirmation = invitation_and_confirmation[-1]["data"]
    assert confirmation["kind"] == "consent-confirmation"
    confirm_url = confirmation["action_url"]

    # Opening the link (as a mail scanner would) records nothing; the button does.
    assert "Bekreft" in page_text(httpx.get(confirm_url))
    assert len(await ledger(consent_conn, member_id)) == 1
    done = httpx.post(f"{consent.url}/preferences/confirm", data={"token": token_of(confirm_url), "lang": "nb"})
    assert done.status_code == 200
    assert "bekreftet" in page_text(done)
    facts = await ledger(consent_conn, member_id)
    assert facts[1:] == [
        (2, "email", "newsletter", "given", "preference-centre"),
        (3, "email", "events", "given", "preference-centre"),
    ]
    methods = await consent_conn.fetch(
        "SELECT method, notice_sha256 FROM ledger WHERE member_id = $1 AND channel = 'email'", member_id
    )
    assert {m["method"] for m in methods} == {"double-opt-in"}
    assert all(m["notice_sha256"] for m in methods)

    # A replayed confirmation is idempotent.
    again = httpx.post(f"{consent.url}/preferences/confirm", data={"token": token_of(confirm_url), "lang": "nb"})
    assert again.status_code == 200
    assert "allerede registrert" in page_text(again)
    assert len(await ledger(consent_conn, member_id)) == 3

    # The address is now proven: another e-mail purpose is recorded at once, and saving
    # the same choices again records nothing.
    form = {"token": token, "lang": "en", "email:newsletter": "on", "email:events": "on", "email:evu": "on"}
    saved = httpx.post(f"{consent.url}/preferences", data=form)
    assert "Changes recorded: 2" in page_text(saved)  # evu given by e-mail, SMS for events withdrawn
    assert checked_boxes(saved) == {"email:newsletter", "email:events", "email:evu"}
    assert len(await ledger(consent_conn, member_id)) == 5
    httpx.post(f"{consent.url}/preferences", data=form)
    assert len(await ledger(consent_conn, member_id)) == 5

    given = await read_topic(stack.bootstrap, topic_prefix + "consent-given", 4)
    withdrawn = await read_topic(stack.bootstrap, topic_prefix + "consent-withdrawn", 1)
    sequences = sorted(json.loads(r.value)["sequence"] for r in [*given, *withdrawn])
    assert sequences == [1, 2, 3, 4, 5]
    assert all(r.key == member_id.encode() for r in [*given, *withdrawn])


async def test_one_click_unsubscribe_from_a_plain_http_client(
    stack: Stack, topic_prefix: str, consent: ServiceProcess, consent_conn: asyncpg.Connection
) -> None:
    member = member_registered()
    member_id = member["data"]["member_id"]
    await register(stack, topic_prefix, consent_conn, member)
    await consent_conn.execute("UPDATE subjects SET email_verified_at = now() WHERE member_id = $1", member_id)
    [invitation] = await mails_for(stack, topic_prefix, member_id, 1, consent)
    token = token_of(invitation["data"]["action_url"])
    httpx.post(f"{consent.url}/preferences", data={"token": token, "email:newsletter": "on", "email:events": "on"})

    url = f"{consent.url}/unsubscribe/{issue_unsubscribe_token(SIGNER, member_id, 'newsletter', 3600)}"
    # RFC 8058: a POST with this body and nothing else: no cookie, no page, no login.
    one_click = httpx.post(url, data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    assert "set-cookie" not in one_click.headers
    state = dict(await consent_conn.fetch("SELECT purpose, state FROM current_consent WHERE member_id = $1", member_id))
    assert state == {"newsletter": "withdrawn", "events": "given"}
    [withdrawal] = await read_topic(stack.bootstrap, topic_prefix + "consent-withdrawn", 1)
    assert json.loads(withdrawal.value)["data"]["source"] == "one-click-unsubscribe"

    # Idempotent: again by POST, then by GET (the page has the same effect and links to the centre).
    assert httpx.post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    page = httpx.get(url)
    assert page.status_code == 200
    assert "meldt av" in page_text(page)
    [prefs_link] = re.findall(r'id="to-preferences" href="([^"]+)"', page.text)
    # That link can withdraw but not give: anyone holding an old newsletter has the unsubscribe URL.
    withdraw_only = httpx.get(html.unescape(prefs_link))
    assert "bruk lenken i en e-post fra oss" in page_text(withdraw_only)
    form = {"token": token_of(html.unescape(prefs_link)), "email:events": "on", "sms:career": "on"}
    assert httpx.post(f"{consent.url}/preferences", data=form).status_code == 200
    assert len(await ledger(consent_conn, member_id)) == 3
    metrics = httpx.get(f"{consent.url}/metrics").text
    labels = 'channel="email",purpose="newsletter",source="one-click-unsubscribe",state="withdrawn"'
    assert f"consent_facts_recorded_total{{{labels}}} 1.0" in metrics
    assert 'consent_requests_unchanged_total{source="one-click-unsubscribe"} 2.0' in metrics

    # A POST without the RFC 8058 body is refused and changes nothing.
    events_url = f"{consent.url}/unsubscribe/{issue_unsubscribe_token(SIGNER, member_id, 'events', 3600)}"
    assert httpx.post(events_url, data={"something": "else"}).status_code == 400
    assert len(await ledger(consent_conn, member_id)) == 3


async def test_links_that_are_not_genuine_are_refused_and_record_nothing(
    stack: Stack, topic_prefix: str, consent: ServiceProcess, consent_conn: asyncpg.Connection
) -> None:
    member = member_registered()
    member_id = member["data"]["member_id"]
    await register(stack, topic_prefix, consent_conn, member)
    genuine = issue_unsubscribe_token(SIGNER, member_id, "newsletter", 3600)
    body, _, mac = genuine.partition(".")

    forged = issue_unsubscribe_token(
        TokenSigner(parse_keys("test:another-key-of-sufficient-length")), member_id, "newsletter", 3600
    )
    # Altered purpose: the payload re-encoded with "events", the old signature kept.
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["purpose"] = "events"
    tampered_body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    tampered = f"{tampered_body}.{mac}"
    expired = issue_unsubscribe_token(SIGNER, member_id, "newsletter", -10)
    wrong_kind = issue_member_link(SIGNER, member_id, "preferences", 3600, "n")

    for token, status in [(forged, 403), (tampered, 403), (expired, 410), (wrong_kind, 403), ("garbage", 403)]:
        url = f"{consent.url}/unsubscribe/{token}"
        assert httpx.post(url, data={"List-Unsubscribe": "One-Click"}).status_code == status, token
        assert httpx.get(url).status_code == status, token

    prefs_forged = issue_member_link(
        TokenSigner(parse_keys("test:another-key-of-sufficient-length")), member_id, "preferences", 3600, "n"
    )
    prefs_expired = issue_member_link(SIGNER, member_id, "preferences", -10, "n")
    assert httpx.get(f"{consent.url}/preferences", params={"token": prefs_forged}).status_code == 403
    assert httpx.get(f"{consent.url}/preferences", params={"token": prefs_expired}).status_code == 410
    save = {"email:newsletter": "on", "sms:events": "on"}
    assert httpx.post(f"{consent.url}/preferences", data={"token": prefs_forged, **save}).status_code == 403
    assert httpx.post(f"{consent.url}/preferences", data={"token": prefs_expired, **save}).status_code == 410
    confirm_forged = issue_member_link(
        TokenSigner(parse_keys("test:another-key-of-sufficient-length")), member_id, "confirm-optin", 3600, "n"
    )
    assert httpx.post(f"{consent.url}/preferences/confirm", data={"token": confirm_forged}).status_code == 403

    # A genuine link with a choice the university does not offer: 422 naming the allowed ones.
    genuine_prefs = issue_member_link(SIGNER, member_id, "preferences", 3600, "n")
    odd = httpx.post(f"{consent.url}/preferences", data={"token": genuine_prefs, "fax:newsletter": "on"})
    assert odd.status_code == 422
    assert "email:newsletter" in odd.text
    assert "sms:career" in odd.text

    assert await ledger(consent_conn, member_id) == []
    assert await consent_conn.fetchval("SELECT count(*) FROM pending_optins") == 0
    metrics = httpx.get(f"{consent.url}/metrics").text
    assert 'consent_links_refused_total{page="unsubscribe",why="expired"} 2.0' in metrics
    assert 'consent_links_refused_total{page="unsubscribe",why="invalid"} 8.0' in metrics
    assert 'consent_links_refused_total{page="preferences",why="expired"} 2.0' in metrics


async def test_a_confirmation_for_an_address_she_no_longer_has_proves_nothing(
    stack: Stack, topic_prefix: str, consent: ServiceProcess, consent_conn: asyncpg.Connection
) -> None:
    member = member_registered(email="old.address@example.no")
    member_id = member["data"]["member_id"]
    await register(stack, topic_prefix, consent_conn, member)
    prefs = issue_member_link(SIGNER, member_id, "preferences", 600, "n")
    httpx.post(f"{consent.url}/preferences", data={"token": prefs, "email:newsletter": "on"})
    confirmation = (await mails_for(stack, topic_prefix, member_id, 2, consent))[-1]["data"]
    assert confirmation["to_address"] == "old.address@example.no"

    changed = {**member_registered(member_id, email="new.address@example.no"), "type": UPDATED}
    changed["data"]["changed"] = ["email"]
    await publish(stack.bootstrap, topic_prefix + "member-updated", [event_bytes(changed)])

    async def moved() -> bool:
        return await consent_conn.fetchval("SELECT email FROM subjects WHERE member_id = $1", member_id) == (
            "new.address@example.no"
        )

    await eventually(moved, what="the new address")
    answer = httpx.post(f"{consent.url}/preferences/confirm", data={"token": token_of(confirmation["action_url"])})
    assert answer.status_code == 404
    assert await ledger(consent_conn, member_id) == []
    verified = await consent_conn.fetchval("SELECT email_verified_at FROM subjects WHERE member_id = $1", member_id)
    assert verified is None
