"""Check-in at the door: her code from her ticket page, redeemed by the staff API and the
staff page in Chromium (twice: the repeat says when), refused when forged, cancelled or
another event's, also by the offline verifier with a synced revocation list;
`event-attended` once on its topic; no-shows once the event is over."""

from __future__ import annotations

import asyncio
import html
import io
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
import zxingcpp
from PIL import Image
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from events.checkin.codes import b64, development_keyring, issue, new_key_spec, unb64
from tests.e2e.consent_helpers import staff_headers, started
from tests.e2e.events_helpers import COMMS, act, counts, facts, member_link, new_members, published_event
from tests.stack import ServiceProcess, Stack, eventually

pytestmark = pytest.mark.real

CHECKIN_KEYS = f"{new_key_spec('door-2026')},{new_key_spec('door-2025')}"


@pytest.fixture
async def events(events_service: ServiceProcess) -> ServiceProcess:
    events_service.env["EVENTS_CHECKIN_KEYS"] = CHECKIN_KEYS
    return await started(events_service)


def code_from_ticket(events: ServiceProcess, event_id: str, member_id: str) -> str:
    """Her code as her ticket page (reached by her signed link) shows it, beside its QR."""
    page = httpx.get(f"{events.url}/events/{event_id}/ticket", params={"token": member_link(member_id)})
    assert page.status_code == 200, page.text
    assert re.search(r'<div class="qr" id="qr"><svg[^>]*>.*</svg></div>', page.text, re.S)
    found = re.search(r'<p class="code" id="code">([^<]+)</p>', page.text)
    assert found is not None
    return html.unescape(found.group(1))


def check_in(events: ServiceProcess, event_id: str, code: str, who: dict[str, str] = COMMS) -> httpx.Response:
    return httpx.post(f"{events.url}/events/{event_id}/checkin", json={"code": code}, headers=who)


def verifier(*args: str) -> subprocess.CompletedProcess[str]:
    """The door's offline verifier, run as an operator runs it."""
    command = [sys.executable, "-m", "events.checkin.verify", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


async def test_check_in_is_idempotent_and_forged_cancelled_or_foreign_codes_are_refused_online_and_offline(
    stack: Stack, topic_prefix: str, events: ServiceProcess, events_conn: asyncpg.Connection, tmp_path: Path
) -> None:
    event_id, other_event = published_event(events, organiser="TNM"), published_event(events)
    kari, ola, per = new_members(3)
    for m in (kari, ola, per):
        assert act(events, event_id, m).json()["status"] == "registered"
    assert act(events, other_event, per).status_code == 201
    kari_code, ola_code = code_from_ticket(events, event_id, kari), code_from_ticket(events, event_id, ola)
    per_elsewhere = code_from_ticket(events, other_event, per)
    assert len(kari_code) < 150

    # The published keys are the configured ones, by key id.
    keys = httpx.get(f"{events.url}/checkin/keys").json()
    assert [(k["kid"], k["crv"]) for k in keys["keys"]] == [("door-2026", "Ed25519"), ("door-2025", "Ed25519")]

    first = check_in(events, event_id, kari_code)
    assert first.status_code == 200, first.text
    assert first.json()["first_use"] is True
    assert first.json()["status"] == "checked_in"
    again = check_in(events, event_id, kari_code, staff_headers("ak", "TNM"))
    assert again.status_code == 200, again.text
    assert again.json()["first_use"] is False
    assert again.json()["status"] == "already_checked_in"
    assert again.json()["checked_in_at"] == first.json()["checked_in_at"]  # when it was first used

    # Ola cancels; her code (shown before) no longer lets her in, and her page says so.
    assert act(events, event_id, ola, "registrations/cancel").status_code == 200
    refused = check_in(events, event_id, ola_code)
    assert refused.status_code == 410, refused.text
    assert "cancelled" in refused.json()["detail"]
    page = httpx.get(f"{events.url}/events/{event_id}/ticket", params={"token": member_link(ola)})
    assert page.status_code == 410

    raw = bytearray(unb64(kari_code))
    raw[-1] ^= 0x01
    forged = b64(bytes(raw))
    dev_signed = issue(development_keyring(), event_id, first.json()["registration_id"])
    for bad, status, words in [
        (forged, 400, "bad signature"),
        (dev_signed, 400, "unknown key"),
        ("not-a-code", 400, "not a check-in code"),
        (per_elsewhere, 409, "another event"),
    ]:
        answer = check_in(events, event_id, bad)
        assert answer.status_code == status, answer.text
        assert words in answer.json()["detail"]
    # Staff of another faculty, and the advisory board, may not check in here.
    assert check_in(events, event_id, kari_code, staff_headers("ak", "HH")).status_code == 403
    assert check_in(events, event_id, kari_code, staff_headers("aab")).status_code == 403
    assert httpx.post(f"{events.url}/events/{event_id}/checkin", json={"code": kari_code}).status_code == 401

    # The door syncs the keys and the signed revocation list, then checks codes offline.
    door = tmp_path / "door"
    token = staff_headers("at", "TNM")["Authorization"].removeprefix("Bearer ")
    synced = verifier("sync", "--url", events.url, "--event", event_id, "--token", token, "--dir", str(door))
    assert synced.returncode == 0, synced.stderr
    assert "1 revoked" in synced.stdout
    per_code = code_from_ticket(events, event_id, per)
    checked = verifier("check", "--event", event_id, "--dir", str(door), kari_code, per_code)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.split() == ["valid", first.json()["registration_id"], "valid", checked.stdout.split()[3]]
    refused = [
        (ola_code, "the registration was cancelled (revoked)"),
        (forged, "forged or altered code (bad signature)"),
        (dev_signed, "signed with an unknown key"),
        (per_elsewhere, "the code is for another event"),
    ]
    offline = verifier("check", "--event", event_id, "--dir", str(door), *(c for c, _ in refused))
    assert offline.returncode == 1, offline.stdout + offline.stderr
    assert offline.stdout.splitlines() == [f"refused: {why}" for _, why in refused]

    # Per at five doors at the same moment: the event's row lock makes exactly one the first.
    async with httpx.AsyncClient(base_url=events.url, headers=COMMS, timeout=60) as client:
        doors = [client.post(f"/events/{event_id}/checkin", json={"code": per_code}) for _ in range(5)]
        answers = await asyncio.gather(*doors)
    assert [a.status_code for a in answers] == [200] * 5
    assert sorted(a.json()["first_use"] for a in answers) == [False, False, False, False, True]
    assert len({a.json()["checked_in_at"] for a in answers}) == 1

    # One `event-attended` each, for Kari and Per, in the event's sequence after the registration.
    attended = await facts(stack, topic_prefix, events_conn, "event-attended", event_id)
    assert [(f["data"]["member_id"], f["data"]["status"]) for f in attended] == [(kari, "attended"), (per, "attended")]
    [registered] = [
        f
        for f in await facts(stack, topic_prefix, events_conn, "event-registered", event_id)
        if f["data"]["member_id"] == kari
    ]
    assert attended[0]["sequence"] > registered["sequence"]
    assert counts(events, event_id)["attended"] == 2
    assert "no_shows" not in counts(events, event_id)  # not over yet


async def test_no_shows_are_counted_once_the_event_is_over(events: ServiceProcess) -> None:
    # Seconds ahead, so the test can wait for its end; room for registering on a busy machine.
    starts = datetime.now(UTC) + timedelta(seconds=8)
    timing = {
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(seconds=2)).isoformat(),
        "registration_deadline": starts.isoformat(),
    }
    event_id = published_event(events, **timing)
    came, stayed_home = new_members(2)
    for m in (came, stayed_home):
        assert act(events, event_id, m).status_code == 201
    came_code, home_code = code_from_ticket(events, event_id, came), code_from_ticket(events, event_id, stayed_home)
    assert check_in(events, event_id, came_code).status_code == 200
    assert "no_shows" not in counts(events, event_id)

    async def over() -> dict[str, int] | None:
        now = counts(events, event_id)
        return now if "no_shows" in now else None

    final = await eventually(over, timeout=40, what="the event to end")
    assert final == {"registered": 2, "waitlisted": 0, "offered": 0, "attended": 1, "no_shows": 1}
    late = check_in(events, event_id, home_code)
    assert late.status_code == 410, late.text
    assert "over" in late.json()["detail"]
    assert check_in(events, event_id, came_code).json()["first_use"] is False  # the repeat still answers
    measured = httpx.get(f"{events.url}/metrics").text
    assert 'events_checkins_total{outcome="first"} 1.0' in measured
    assert 'events_checkins_total{outcome="410"} 1.0' in measured


def scanned(png: bytes) -> list[str]:
    """The QR codes ZXing (the decoder behind many phone scanners) reads in a picture."""
    return [found.text for found in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))]


@pytest.mark.once  # pages and WebCrypto do not depend on the broker's version: one round is enough
async def test_the_staff_page_in_chromium_checks_in_shows_the_repeat_and_goes_on_offline(
    events: ServiceProcess, browser: webdriver.Chrome
) -> None:
    event_id = published_event(events, organiser="HS")
    online, offline, cancelled = new_members(3)
    for m in (online, offline, cancelled):
        assert act(events, event_id, m).status_code == 201
    # Her ticket page in the browser: the QR is drawn (an inline SVG), the code beside it.
    await asyncio.to_thread(browser.get, f"{events.url}/events/{event_id}/ticket?token={member_link(online)}")
    qr = browser.find_element(By.CSS_SELECTOR, "#qr svg")
    assert qr.size["width"] > 100
    code = browser.find_element(By.ID, "code").text
    # What a scanner at the door reads off the drawn QR (Chromium's pixels, ZXing's decoder) is her code.
    assert scanned(qr.screenshot_as_png) == [code]
    offline_code, cancelled_code = (code_from_ticket(events, event_id, m) for m in (offline, cancelled))
    assert act(events, event_id, cancelled, "registrations/cancel").status_code == 200

    token = staff_headers("ak", "HS")["Authorization"].removeprefix("Bearer ")
    door = f"{events.url}/events/{event_id}/checkin?lang=en"
    await asyncio.to_thread(browser.get, f"{door}#token={token}")
    assert "token=" not in browser.current_url  # taken from the fragment, then dropped
    # The page syncs the keys and the signed revocation list (checked with WebCrypto) at once.
    WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "door").get_attribute("data-list-version"))

    def redeem(text: str, outcome: str) -> tuple[str, str | None]:
        browser.execute_script("document.getElementById('result').dataset.outcome = ''")
        browser.find_element(By.ID, "code").send_keys(text)
        browser.find_element(By.ID, "check-in").click()
        WebDriverWait(browser, 30).until(
            lambda b: (
                b.find_element(By.ID, "result").get_attribute("data-outcome") == outcome
                and b.find_element(By.ID, "code").get_attribute("value") == ""
            )
        )
        shown = browser.find_element(By.ID, "result")
        return shown.text, shown.get_attribute("data-mode")

    assert redeem(code, "ok") == ("Checked in", "online")
    first_at = browser.find_element(By.ID, "result").get_attribute("data-first-at")
    # A second scan of the same code: the page says it was used before, and when.
    repeat, _ = redeem(code, "again")
    assert repeat.startswith("Already checked in")
    assert "first used" in repeat
    assert browser.find_element(By.ID, "result").get_attribute("data-first-at") == first_at
    i = len(code) - 20  # a character of the signature (all six bits count; the last one's do not)
    forged = code[:i] + ("A" if code[i] != "A" else "g") + code[i + 1 :]
    assert "bad signature" in redeem(forged, "refused")[0]
    assert "cancelled" in redeem(cancelled_code, "refused")[0]

    # The network goes: the page checks signatures and the synced list itself.
    events.stop()
    assert redeem(offline_code, "ok") == (
        "Checked in\nOffline: checked against the signature and the revocation list",
        "offline",
    )
    assert redeem(offline_code, "again")[0].startswith("Already checked in")
    assert "revoked" in redeem(cancelled_code, "refused")[0]
    assert "bad signature" in redeem(forged, "refused")[0]
    # Back online: the page redeems what it let in while offline.
    await started(events)
    await asyncio.to_thread(browser.get, door)

    async def both_attended() -> bool:
        return counts(events, event_id)["attended"] == 2

    assert await eventually(both_attended, timeout=30, what="the offline check-in to be redeemed")
