"""The browser harness end to end: headless chromium ticks a checkbox and posts a form to a local server.

The browser fixture is tests.browser.browser, registered in tests/conftest.py.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

FORM = b"""<!doctype html><title>form</title>
<form method="post"><label><input type="checkbox" name="consent" value="yes"> I agree</label>
<button type="submit">Send</button></form>"""


class FormHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._reply(FORM)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        consent = parse_qs(body).get("consent", ["(not ticked)"])[0]
        self._reply(f'<!doctype html><title>posted</title><p id="result">consent={html.escape(consent)}</p>'.encode())

    def _reply(self, page: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def form_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FormHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.real
def test_browser_ticks_a_checkbox_and_posts_the_form(browser: webdriver.Chrome, form_url: str) -> None:
    browser.get(form_url)
    browser.find_element(By.NAME, "consent").click()
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    result = WebDriverWait(browser, 10).until(expected_conditions.presence_of_element_located((By.ID, "result")))
    assert result.text == "consent=yes"
