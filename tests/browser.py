"""Headless Debian chromium for the browser tests, driven through Debian's chromedriver.

scripts/test installs the packages (scripts/lib/browser.sh). The driver path is given
explicitly, so Selenium Manager is never run and nothing is downloaded; the browser
gets a fresh profile that is removed afterwards, and is always quit.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PAGE_LOAD_TIMEOUT = 30.0  # seconds

# Headless in a container, as root, without a GPU, and without any traffic of its own
# (updates, sync, field trials, QUIC): the tests' local servers are all it talks to.
# Even with these flags chromium 156 still looks up accounts.google.com, update.googleapis.com,
# clients2.google.com and the default search engine; the resolver rule makes every host name but
# localhost fail locally (loopback addresses stay reachable), so no DNS query leaves the machine.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1 , EXCLUDE ::1",
)


@contextmanager
def open_browser() -> Iterator[webdriver.Chrome]:
    """A headless chromium with a throwaway profile, quit on exit (also when the test fails)."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        raise RuntimeError(
            f"{' and '.join(missing)} not found: run scripts/test, which installs Debian's "
            "chromium and chromium-driver (or: apt-get install chromium chromium-driver)"
        )
    with tempfile.TemporaryDirectory(prefix="usn-chromium-", ignore_cleanup_errors=True) as scratch:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*FLAGS, f"--user-data-dir={scratch}/profile"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # driver.get_log("browser"): console errors
        # Crashpad keeps its database under $XDG_CONFIG_HOME/chromium whatever --user-data-dir says:
        # keep that in the scratch folder too, not in the user's home.
        env = {**os.environ, "XDG_CONFIG_HOME": f"{scratch}/config", "XDG_CACHE_HOME": f"{scratch}/cache"}
        driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER), env=env))
        try:
            driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
            yield driver
        finally:
            driver.quit()


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    """A fresh headless chromium per test (see open_browser)."""
    with open_browser() as driver:
        yield driver
