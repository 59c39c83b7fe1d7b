"""A real Prometheus watches the services: targets up, key series there, the lag alert fires.

Debian's `prometheus` scrapes membership, consent, mailer and events (each its own
process, as the fixtures start them) with deploy/prometheus/prometheus.yml's job and
evaluates deploy/prometheus/alerts.yml, every duration shortened 60 times
(tests/prometheus.py). Then consent's consumers are stopped the way a stuck consumer
stops, blocked on its database (a lock on its inbox), while member-registered keeps
arriving: consent's lag grows and AlumniConsumerLagGrowing fires for consent, and
not for the mailer, which reads the same topic and keeps up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.events import member_registered
from tests.prometheus import Prometheus, running_prometheus
from tests.stack import ServiceProcess, Stack, event_bytes, free_port, publish

# Scraping and rules do not depend on the broker's version: the first Kafka round only.
pytestmark = [pytest.mark.real, pytest.mark.once]

SERVICES = ("membership", "consent", "mailer", "events")


async def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll a synchronous check (Prometheus' API) until it is truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def firing(prometheus: Prometheus, alert: str, service: str) -> list[dict[str, Any]]:
    return [
        a
        for a in prometheus.alerts()
        if a["labels"]["alertname"] == alert and a["labels"].get("service") == service and a["state"] == "firing"
    ]


async def test_prometheus_scrapes_every_service_and_the_lag_alert_fires(
    stack: Stack,
    topic_prefix: str,
    membership_service: ServiceProcess,
    consent_service: ServiceProcess,
    mailer_service: ServiceProcess,
    events_service: ServiceProcess,
    consent_conn: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    services = dict(zip(SERVICES, (membership_service, consent_service, mailer_service, events_service), strict=True))
    for name, service in services.items():
        # Lag measured every half second, so that a second of Prometheus time sees it move.
        service.env[f"{name.upper()}_LAG_INTERVAL_SECONDS"] = "0.5"
    for service in services.values():
        if not service.running:
            service.start()
    await asyncio.gather(*(s.wait_ready() for s in services.values()))

    ports = {name: s.http_port for name, s in services.items()}
    with running_prometheus(ports, free_port(), tmp_path) as prometheus:
        # Every service's target is up, with the labels the alerts and dashboards select on.
        def all_up() -> bool:
            targets = [t for t in prometheus.targets() if t["labels"]["job"] == "usn-alumni"]
            return sorted(t["labels"]["service"] for t in targets if t["health"] == "up") == sorted(SERVICES)

        await until(all_up, 30, "every service's target up")

        # The key series: process, HTTP (the fixtures' /readyz polls are requests), outbox,
        # and the lag of every consumer (consent, mailer and events consume; all measure lag).
        def series_present() -> dict[str, set[str]]:
            missing: dict[str, set[str]] = {}
            for metric, who in (
                ("process_resident_memory_bytes", SERVICES),
                ("alumni_http_requests_total", SERVICES),
                ("alumni_http_request_duration_seconds_bucket", SERVICES),
                ("alumni_outbox_backlog_messages", SERVICES),
                ("alumni_outbox_oldest_unsent_age_seconds", SERVICES),
                ("alumni_consumer_lag_messages", ("consent", "mailer", "events")),
            ):
                have = {r["metric"]["service"] for r in prometheus.query(f'{metric}{{job="usn-alumni"}}')}
                if set(who) - have:
                    missing[metric] = set(who) - have
            return missing

        await until(lambda: not series_present(), 20, f"the key series (missing: {series_present()})")
        routes = {r["metric"]["route"] for r in prometheus.query('alumni_http_requests_total{service="consent"}')}
        assert "/readyz" in routes

        # consent's consumers block on its inbox, as on a lock or a database that hangs.
        blocker = consent_conn.transaction()
        await blocker.start()
        await consent_conn.execute("LOCK TABLE inbox IN ACCESS EXCLUSIVE MODE")
        try:
            topic = topic_prefix + "member-registered"
            deadline = time.monotonic() + 45
            while not firing(prometheus, "AlumniConsumerLagGrowing", "consent"):
                assert time.monotonic() < deadline, f"no lag alert; alerts: {prometheus.alerts()}"
                # Members keep registering: a few a second, from a plain producer.
                await publish(stack.bootstrap, topic, [event_bytes(member_registered()) for _ in range(3)])
                await asyncio.sleep(0.5)
            (alert,) = firing(prometheus, "AlumniConsumerLagGrowing", "consent")
            assert alert["labels"]["topic"].endswith("member-registered")
            assert alert["labels"]["severity"] == "warning"
            assert float(alert["value"]) > 0
            # The mailer reads the same topic and keeps up: no alert for it.
            assert not firing(prometheus, "AlumniConsumerLagGrowing", "mailer")
            lag = prometheus.query(f'sum by (service) (alumni_consumer_lag_messages{{topic="{topic}"}})')
            by_service = {r["metric"]["service"]: float(r["value"][1]) for r in lag}
            assert by_service["consent"] > by_service.get("mailer", 0)
        finally:
            await blocker.rollback()
