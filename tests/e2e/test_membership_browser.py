"""Membership self-service in a real headless browser (Debian's chromium): log in by
the magic link from the mail, edit the profile, offer mentoring, join a network;
then the database and the volunteer-offered topic say so."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.e2e.consent_helpers import outbox_drained, staff_headers, started
from tests.e2e.profile_helpers import alumna, events_on, graduate
from tests.e2e.signup_helpers import mails_for
from tests.e2e.test_consent_browser import click_and_wait
from tests.stack import ServiceProcess, Stack

pytestmark = pytest.mark.real

EMAIL = "ingrid.berg@example.no"


def _fill(browser: webdriver.Chrome, element_id: str, text: str) -> None:
    field = browser.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


async def test_a_member_logs_in_edits_her_profile_offers_mentoring_and_joins_a_network(
    stack: Stack,
    topic_prefix: str,
    membership_service: ServiceProcess,
    membership_conn: asyncpg.Connection,
    browser: webdriver.Chrome,
) -> None:
    await started(membership_service)
    member_id = (await graduate(stack, topic_prefix, membership_conn, alumna("730001", email=EMAIL)))["730001"]
    network = httpx.post(
        f"{membership_service.url}/networks",
        json={"name": "Maritime alumni", "faculty": "TNM", "external_url": "https://www.linkedin.com/groups/8812345"},
        headers=staff_headers("comms"),
    ).json()

    # Log in: ask for a link, open it from the mail, press the button.
    await asyncio.to_thread(browser.get, f"{membership_service.url}/login?lang=en")
    _fill(browser, "email", EMAIL)
    await asyncio.to_thread(click_and_wait, browser, "send")
    assert "login link is on its way" in browser.find_element(By.ID, "status").text
    [mail] = await mails_for(stack, topic_prefix, member_id, membership_service)
    assert mail["kind"] == "magic-link"
    await asyncio.to_thread(browser.get, mail["action_url"])
    await asyncio.to_thread(click_and_wait, browser, "confirm")
    assert browser.current_url == f"{membership_service.url}/profile"
    assert browser.find_element(By.ID, "email").get_attribute("value") == EMAIL

    # A wrong phone number first: the form says why and keeps what she typed.
    _fill(browser, "phone", "912 345")
    await asyncio.to_thread(click_and_wait, browser, "save")
    assert "Et norsk nummer har 8 sifre (du skrev 6)" in browser.find_element(By.ID, "error-phone").text
    _fill(browser, "phone", "912 34 567")
    _fill(browser, "employer", "Wilhelmsen")
    _fill(browser, "job_title", "Logistikksjef")
    Select(browser.find_element(By.ID, "language")).select_by_value("en")
    browser.find_element(By.ID, "interest-career-guidance").click()
    browser.find_element(By.ID, "offer-mentor").click()
    await asyncio.to_thread(click_and_wait, browser, "save")
    assert browser.find_element(By.ID, "status").text == "Your profile is saved."
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert browser.find_element(By.ID, "offer-mentor").is_selected()
    assert browser.find_element(By.ID, "phone").get_attribute("value") == "+4791234567"

    # Join the faculty's network from the networks page.
    await asyncio.to_thread(click_and_wait, browser, "nav-networks")
    await asyncio.to_thread(click_and_wait, browser, f"join-{network['network_id']}")
    assert browser.find_element(By.ID, "status").text == "You joined Maritime alumni."
    assert browser.find_element(By.ID, f"joined-{network['network_id']}").is_displayed()

    row = await membership_conn.fetchrow(
        "SELECT m.phone, m.contact_source, p.employer, p.job_title, p.language FROM members m"
        " JOIN profiles p USING (member_id) WHERE member_id = $1",
        member_id,
    )
    assert row is not None
    assert tuple(row) == ("+4791234567", "member", "Wilhelmsen", "Logistikksjef", "en")
    offers = await membership_conn.fetch("SELECT offer_type FROM volunteer_offers WHERE member_id = $1", member_id)
    assert [r[0] for r in offers] == ["mentor"]
    joined = await membership_conn.fetchval(
        "SELECT count(*) FROM network_members WHERE member_id = $1 AND network_id = $2",
        member_id,
        network["network_id"],
    )
    assert joined == 1
    await outbox_drained(membership_conn)
    [offered] = await events_on(stack, topic_prefix + "volunteer-offered", member_id)
    assert (offered["sequence"], offered["data"]["offer_type"], offered["data"]["faculties"]) == (1, "mentor", ["TNM"])
    assert await events_on(stack, topic_prefix + "volunteer-withdrawn", member_id) == []
