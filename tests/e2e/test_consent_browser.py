"""The preference centre in a real headless browser (Debian's chromium): open it
from the invitation's link, change choices, save, confirm by e-mail, see the result."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from tests.e2e.consent_helpers import ledger, mails_for, member_registered, register, started
from tests.stack import ServiceProcess, Stack

pytestmark = pytest.mark.real


def box(browser: webdriver.Chrome, name: str) -> bool:
    return browser.find_element(By.ID, name).is_selected()


def click_and_wait(browser: webdriver.Chrome, element_id: str) -> None:
    """Click a button or link that loads a new page, and wait until the new page is there
    (a click returns when the click is done, not always when the next page has loaded).

    A new document has a new `performance.timeOrigin`; watching the old page's elements
    go stale instead is racy (Chromium may answer "node does not belong to the document").
    """
    before = browser.execute_script("return performance.timeOrigin")
    browser.find_element(By.ID, element_id).click()
    # Asked while the old page unloads, the browser may answer with an error: ask again.
    WebDriverWait(browser, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda b: (
            b.execute_script("return performance.timeOrigin") != before
            and b.execute_script("return document.readyState") == "complete"
        )
    )


async def test_a_member_sets_her_choices_in_the_browser(
    stack: Stack,
    topic_prefix: str,
    consent_service: ServiceProcess,
    consent_conn: asyncpg.Connection,
    browser: webdriver.Chrome,
) -> None:
    await started(consent_service)
    member = member_registered(given_name="Ingrid")
    member_id = member["data"]["member_id"]
    await register(stack, topic_prefix, consent_conn, member)
    [invitation] = await mails_for(stack, topic_prefix, member_id, 1, consent_service)

    # The page from the invitation link: nothing ticked, her name, the notice texts.
    await asyncio.to_thread(browser.get, invitation["data"]["action_url"])
    assert "Ingrid" in browser.find_element(By.TAG_NAME, "h1").text
    assert "omtrent en gang i måneden" in browser.find_element(By.ID, "purpose-newsletter").text
    assert not any(box(browser, n) for n in ("email:newsletter", "sms:events", "email:career"))

    # In English, tick newsletter by e-mail and events by SMS, and save.
    await asyncio.to_thread(click_and_wait, browser, "other-language")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    browser.find_element(By.ID, "email:newsletter").click()
    browser.find_element(By.ID, "sms:events").click()
    await asyncio.to_thread(click_and_wait, browser, "save")

    status = browser.find_element(By.ID, "status").text
    assert "Changes recorded: 1." in status
    assert "confirm your address" in status
    assert box(browser, "sms:events")
    assert not box(browser, "email:newsletter")  # not until she confirms
    assert browser.find_element(By.ID, "awaiting-email:newsletter").text == "(awaiting confirmation)"
    assert await ledger(consent_conn, member_id) == [(1, "sms", "events", "given", "preference-centre")]

    # The confirmation mail's link, then its button.
    confirmation = (await mails_for(stack, topic_prefix, member_id, 2, consent_service))[-1]["data"]
    assert confirmation["language"] == "en"
    await asyncio.to_thread(browser.get, confirmation["action_url"])
    await asyncio.to_thread(click_and_wait, browser, "confirm")
    assert browser.find_element(By.ID, "heading").text == "Thank you, confirmed"

    # Back in the preference centre (the page's own link): both choices stand; untick SMS.
    await asyncio.to_thread(click_and_wait, browser, "to-preferences")
    assert box(browser, "email:newsletter")
    assert box(browser, "sms:events")
    browser.find_element(By.ID, "sms:events").click()
    await asyncio.to_thread(click_and_wait, browser, "save")
    assert not box(browser, "sms:events")
    assert box(browser, "email:newsletter")

    assert [f[1:4] for f in await ledger(consent_conn, member_id)] == [
        ("sms", "events", "given"),
        ("email", "newsletter", "given"),
        ("sms", "events", "withdrawn"),
    ]
