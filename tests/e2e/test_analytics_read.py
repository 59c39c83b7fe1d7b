"""The analytics read side on the real broker and database: facts published with a plain Kafka
client, figures read through the API (JSON and CSV) and the dashboard in Chromium.

Shows: the pinned `GET /analytics/members` (live and as_of), primary and secondary
suppression, role scoping (comms, ak/at, aab), precise 4xx, the value model on live
figures, and that no output anywhere counts 1–4 people.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from analytics.read.routes import flatten
from tests.e2e.analytics_read_helpers import (
    ATTENDED,
    CLICKED,
    EARLY,
    ENROLLED,
    OPENED,
    REGISTERED,
    SENT,
    caught_up,
    read_routes,
    seed,
    small_counts_in_csv,
    small_counts_in_json,
)
from tests.e2e.consent_helpers import staff_headers
from tests.stack import ServiceProcess, Stack

pytestmark = pytest.mark.real

CHARTS = ("growth", "reach", "campaigns", "events", "volunteering", "engagement", "pilot", "value")


async def test_read_api_suppresses_scopes_and_travels_in_time(
    stack: Stack, topic_prefix: str, analytics_service: ServiceProcess, analytics_conn: asyncpg.Connection
) -> None:
    analytics_service.start()
    await analytics_service.wait_ready()
    seeded = await seed(stack, topic_prefix)
    await caught_up(analytics_service)

    async with httpx.AsyncClient(base_url=analytics_service.url, timeout=120) as client:
        comms, aab = staff_headers("comms"), staff_headers("aab")
        ak_hh, at_hs = staff_headers("ak", "HH"), staff_headers("at", "HS")

        # The pinned answer: HS (3) is suppressed, and HIU (6) with it, else 38 − 20 − 9 gives HS back.
        members = (await client.get("/analytics/members", headers=comms)).json()
        assert members["total"] == 38
        assert members["by_faculty"] == {"HH": 20, "TNM": 9, "HS": None, "HIU": None}
        assert datetime.fromisoformat(members["as_of"]) <= datetime.now(UTC)
        assert (await client.get("/analytics/members", headers=aab)).json()["by_faculty"] == members["by_faculty"]
        # An AK sees her faculty (the same cell as USN-wide); an AT of a suppressed faculty sees null.
        assert (await client.get("/analytics/members", headers=ak_hh)).json() | {"as_of": ""} == {
            "as_of": "",
            "total": 20,
            "by_faculty": {"HH": 20},
        }
        assert (await client.get("/analytics/members?faculty=HS", headers=at_hs)).json()["total"] is None
        got = await client.get("/analytics/members?faculty=TNM", headers=ak_hh)
        assert got.status_code == 403
        assert "HH" in got.json()["detail"]
        assert (await client.get("/analytics/members?faculty=TNM", headers=comms)).json()["total"] == 9

        # as_of: only the members published before the moment (a generation built from the topics).
        stamp = seeded.as_of.isoformat().replace("+00:00", "Z")
        past = (await client.get("/analytics/members", params={"as_of": stamp}, headers=comms)).json()
        assert past["total"] == sum(EARLY.values())
        assert past["by_faculty"] == {"HH": 20, "TNM": 9, "HS": 0, "HIU": 0}
        assert datetime.fromisoformat(past["as_of"]) == seeded.as_of
        await _as_of_is_bounded(client, comms, analytics_conn, analytics_service, seeded.as_of)

        # Precise 4xx.
        assert (await client.get("/analytics/members")).status_code == 401
        assert (await client.get("/analytics/members", headers={"Authorization": "Bearer x.y"})).status_code == 401
        future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        for value, words in (
            ("yesterday", "RFC 3339"),
            ("2026-06-30T12:00:00", "RFC 3339"),  # no offset
            ("2026-02-30T12:00:00Z", "not a real date-time"),
            (future, "in the future"),
        ):
            got = await client.get("/analytics/members", params={"as_of": value}, headers=comms)
            assert got.status_code == 422, value
            assert got.json()["detail"][0]["loc"] == ["query", "as_of"]
            assert words in got.json()["detail"][0]["msg"]
        got = await client.get("/analytics/reach.csv", params={"faculty": "XX"}, headers=comms)
        assert got.status_code == 422
        assert got.json()["detail"][0]["loc"] == ["query", "faculty"]

        # Campaigns, events, volunteering, EVU, engagement, the value model.
        (campaign,) = (await client.get("/analytics/campaigns", headers=comms)).json()["campaigns"]
        assert campaign["campaign_id"] == seeded.campaign_id
        assert (campaign["sent"], campaign["opened"], campaign["clicked"]) == (SENT, OPENED, None)
        assert campaign["open_rate"] == OPENED / SENT
        assert CLICKED < 5
        (event,) = (await client.get("/analytics/events", headers=comms)).json()["events"]
        assert (event["faculty"], event["registered"], event["attended"]) == ("HH", REGISTERED, ATTENDED)
        offers = (await client.get("/analytics/volunteering", headers=comms)).json()
        assert offers["by_type"] == {"guest-lecture": None, "mentor": None}  # 2 → hidden; 6 alone would give it back
        value = (await client.get("/analytics/value", headers=comms)).json()
        assert value["evu"]["observed_revenue_nok"] == ENROLLED * 17_000
        assert [s["strategy_revenue_nok"] for s in value["evu"]["scenarios"]] == [1_929_500, 3_859_000, 5_788_500]
        assert [s["live_revenue_nok"] for s in value["evu"]["scenarios"]] == [3_230, 6_460, 9_690]  # 38 members
        assert value["engagement"]["former_students"] == 227_000
        assert value["growth"]["goal"] == 23_000
        engagement = (await client.get("/analytics/engagement", headers=comms)).json()
        assert engagement["by_mode"]["communication"] == OPENED
        assert engagement["by_mode"]["experiential"] == ATTENDED
        assert engagement["by_mode"]["philanthropic"] == 0

        # CSV: the same figures, a suppressed cell empty.
        got = await client.get("/analytics/members.csv", headers=comms)
        assert got.headers["content-type"].startswith("text/csv")
        rows = dict(csv.reader(io.StringIO(got.text)))
        assert (rows["total"], rows["by_faculty.HH"], rows["by_faculty.HS"]) == ("38", "20", "")

        # No output anywhere counts 1–4 people: every route, JSON and CSV, for every role.
        routes = read_routes((await client.get("/openapi.json")).json())
        assert len(routes) >= 30
        for headers in (comms, aab, ak_hh, at_hs, staff_headers("ak", "TNM")):
            for route in routes:
                got = await client.get(route, headers=headers)
                assert got.status_code == 200, (route, got.text)
                found = small_counts_in_csv(got.text) if route.endswith(".csv") else small_counts_in_json(got.json())
                assert not found, (route, found)
                if not route.endswith(".csv"):  # the CSV holds what the JSON holds
                    csv_rows = (await client.get(f"{route}.csv", headers=headers)).text
                    assert len(csv_rows.splitlines()) == len(flatten(got.json())) + 1, route
        # ... and as they stood at the past moment (the as_of generation built above).
        for headers in (comms, at_hs):
            for route in routes:
                got = await client.get(route, params={"as_of": stamp}, headers=headers)
                assert got.status_code == 200, (route, got.text)
                found = small_counts_in_csv(got.text) if route.endswith(".csv") else small_counts_in_json(got.json())
                assert not found, (route, stamp, found)


async def _as_of_is_bounded(
    client: httpx.AsyncClient,
    comms: dict[str, str],
    conn: asyncpg.Connection,
    service: ServiceProcess,
    built_at: datetime,
) -> None:
    """as_of costs at most one build at a time, reuses what it built, and refuses what has no past."""
    built = await conn.fetchval("SELECT count(*) FROM generations WHERE state = 'as_of'")
    # A moment between the same two events as one built already: the same generation, no new build.
    later = (built_at + timedelta(microseconds=1)).isoformat()
    again = await client.get("/analytics/members", params={"as_of": later}, headers=comms)
    assert again.json()["total"] == sum(EARLY.values())
    assert await conn.fetchval("SELECT count(*) FROM generations WHERE state = 'as_of'") == built
    # Before the first event on the topics: nothing stood then (a 422 naming as_of, not empty figures).
    got = await client.get("/analytics/members.csv", params={"as_of": "2001-01-01T00:00:00Z"}, headers=comms)
    assert got.status_code == 422
    assert got.json()["detail"][0]["loc"] == ["query", "as_of"]
    assert "before the first event" in got.json()["detail"][0]["msg"]
    # One build at a time: while another holds the build lock, a new moment is a 429 to retry.
    async with conn.transaction():
        assert await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext('analytics/as_of-build'))")
        moment = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        got = await client.get("/analytics/engagement", params={"as_of": moment}, headers=comms)
        assert got.status_code == 429
        assert int(got.headers["retry-after"]) > 0
        # The dashboard says so too, in her language, with the same Retry-After.
        page = await client.get("/analytics/dashboard", params={"as_of": moment, "lang": "en"}, headers=comms)
        assert page.status_code == 429
        assert page.headers["retry-after"] == got.headers["retry-after"]
        assert "Try again in 30 seconds" in page.text
    assert await conn.fetchval("SELECT count(*) FROM generations WHERE state = 'as_of'") == built
    # The command line refuses the same moments, saying why.
    for value, words in (
        ("2001-01-01T00:00:00Z", "before the first event"),
        ("2026-06-30T12:00:00", "RFC 3339"),
        ((datetime.now(UTC) + timedelta(days=1)).isoformat(), "in the future"),
    ):
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "analytics", "as-of", value],
            env={**os.environ, **service.env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        assert words in done.stderr


@pytest.mark.once  # the page and its charts do not depend on the Kafka version
async def test_dashboard_draws_every_chart_with_its_table(
    stack: Stack, topic_prefix: str, analytics_service: ServiceProcess, browser: webdriver.Chrome
) -> None:
    analytics_service.start()
    await analytics_service.wait_ready()
    await seed(stack, topic_prefix)
    await caught_up(analytics_service)
    await asyncio.to_thread(_walk_the_dashboard, browser, analytics_service.url)


def _walk_the_dashboard(browser: webdriver.Chrome, base: str) -> None:
    browser.get(f"{base}/analytics/dashboard?lang=nb")
    assert "/analytics/dashboard/login" in browser.current_url  # not signed in yet
    browser.find_element(By.ID, "token").send_keys("not-a-token")
    _click_and_wait(browser, "login")
    assert "ugyldig" in browser.find_element(By.ID, "error").text
    browser.get_log("browser")  # the refused sign-in's 401 is logged as an error: what follows must have none
    token = staff_headers("comms")["Authorization"].removeprefix("Bearer ")
    browser.find_element(By.ID, "token").send_keys(token)
    _click_and_wait(browser, "login")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Alumni i tall"
    _charts_drawn(browser)
    # The tables say "skjult" for a suppressed cell, and hold no count of 1–4 people.
    counts = [c.get_attribute("data-count") for c in browser.find_elements(By.CSS_SELECTOR, "[data-count]")]
    assert counts
    assert [c for c in counts if c and 0 < int(c) < 5] == []
    assert "skjult" in browser.find_element(By.ID, "table-volunteering").text
    assert "38" in browser.find_element(By.ID, "table-growth").text
    # The data the charts draw holds no small count either.
    data = browser.execute_script("return JSON.parse(document.getElementById('chart-data').textContent)")
    assert small_counts_in_json(data) == []
    # No console errors: no CSP violation, no script that failed.
    assert [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    # In English: the same page and figures.
    _click_and_wait(browser, "lang-en")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Alumni in figures"
    _charts_drawn(browser)
    assert "suppressed" in browser.find_element(By.ID, "table-volunteering").text
    # One faculty, through the page's own form: HH's 20 members, the language kept.
    Select(browser.find_element(By.ID, "faculty")).select_by_value("HH")
    _click_and_wait(browser, "show")
    assert browser.find_element(By.ID, "scope").text.endswith("Faculty HH")
    assert browser.find_elements(By.CSS_SELECTOR, "#table-growth tbody tr td")[-1].text == "20"
    _charts_drawn(browser)
    assert [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def _click_and_wait(browser: webdriver.Chrome, element_id: str) -> None:
    """Click what loads a new page, and wait until the new page is there."""
    before = browser.execute_script("return performance.timeOrigin")
    browser.find_element(By.ID, element_id).click()
    WebDriverWait(browser, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda b: (
            b.execute_script("return document.readyState") == "complete"
            and b.execute_script("return performance.timeOrigin") != before
        )
    )


def _charts_drawn(browser: webdriver.Chrome) -> None:
    """Every chart drawn by plotly (an SVG with marks), and its table beside it."""
    WebDriverWait(browser, 30).until(
        lambda b: all(b.find_element(By.ID, f"chart-{c}").get_attribute("data-drawn") == "true" for c in CHARTS)
    )
    for chart in CHARTS:
        box = browser.find_element(By.ID, f"chart-{chart}")
        assert box.find_elements(By.CSS_SELECTOR, "svg.main-svg"), chart
        # Something drawn: a bar, a line or a marker of at least one trace.
        assert box.find_elements(By.CSS_SELECTOR, "g.trace path, g.trace .point, path.js-line"), chart
        rows = browser.find_elements(By.CSS_SELECTOR, f"#table-{chart} tbody tr")
        assert rows, f"{chart}: empty table"
