"""Every service's HTTP metrics are labelled by route template, and /docs needs no CDN.

The apps are built as in production (`create_app`), nothing started: requests
that reach a handler needing the database fail there, which is still a request
of that route to count.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from alumni_kit.metrics import UNMATCHED_ROUTE

PERSONAL = "kari.nordmann@example.no"  # what a raw path may hold: an address, a token, an id


def _apps() -> dict[str, Callable[..., FastAPI]]:
    from consent.app import create_app as consent_app
    from events.app import create_app as events_app
    from mailer.app import create_app as mailer_app
    from membership.app import create_app as membership_app

    return {"membership": membership_app, "consent": consent_app, "mailer": mailer_app, "events": events_app}


def _settings(service: str, **values: Any) -> Any:
    from consent.settings import ConsentSettings
    from events.settings import EventsSettings
    from mailer.settings import MailerSettings
    from membership.settings import MembershipSettings

    kinds = {"membership": MembershipSettings, "consent": ConsentSettings, "mailer": MailerSettings}
    return kinds.get(service, EventsSettings)(**values)


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t")


def _labels(registry: CollectorRegistry, metric: str) -> list[dict[str, str]]:
    text = generate_latest(registry).decode()
    return [s.labels for f in text_string_to_metric_families(text) for s in f.samples if s.name == metric]


@pytest.mark.parametrize("service", ["membership", "consent", "mailer", "events"])
async def test_every_route_is_counted_under_its_template_and_no_label_holds_the_raw_path(service: str) -> None:
    app = _apps()[service](_settings(service))
    registry = app.state.runtime.metrics.registry
    templates = app.openapi()["paths"]
    async with _client(app) as client:
        for template, operations in templates.items():
            path = re.sub(r"\{[^}]+\}", PERSONAL, template)
            for method in operations:
                await client.request(method.upper(), path, content=b"{}", headers={"Content-Type": "application/json"})
        await client.get(f"/no-such-page/{PERSONAL}")
        await client.request("PROPFIND", f"/members/{PERSONAL}")

    counted = _labels(registry, "alumni_http_requests_total")
    assert {c["route"] for c in counted} == set(templates) | {UNMATCHED_ROUTE}
    assert {c["method"] for c in counted} <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert any(c["method"] == "other" for c in counted)  # PROPFIND: no series per invented method

    everything = generate_latest(registry).decode()
    assert "example.no" not in everything
    assert "kari" not in everything
    assert "/no-such-page" not in everything


@pytest.mark.parametrize("service", ["membership", "mailer"])
async def test_api_docs_are_served_with_their_own_assets_or_switched_off(service: str) -> None:
    app = _apps()[service](_settings(service))
    async with _client(app) as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text) + re.findall(r"url: ?'([^']+)'", page.text)
        assert assets
        assert not [a for a in assets if a.startswith(("http:", "https:", "//"))], assets
        for asset in assets:
            assert (await client.get(asset)).status_code == 200, asset
        assert "cdn" not in page.text.lower()
        assert (await client.get("/redoc")).status_code == 404  # FastAPI's /redoc loads from a CDN: not offered

    off = _apps()[service](_settings(service, api_docs_enabled=False))
    async with _client(off) as client:
        assert (await client.get("/docs")).status_code == 404
        assert (await client.get("/docs/assets/swagger-ui-bundle.js")).status_code == 404
        assert (await client.get("/openapi.json")).status_code == 200  # the contract itself stays
