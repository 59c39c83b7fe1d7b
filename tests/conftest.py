"""Fixtures: the real stack from scripts/test, a fresh database and topic prefix per test."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from alumni_kit.kafka import ensure_topics
from alumni_kit.topics import PLATFORM_TOPICS
from tests.browser import browser  # noqa: F401 - a fixture for the browser tests
from tests.smtp import SmtpSink
from tests.stack import (
    ANALYTICS_PEPPER,
    SIGNING_KEYS,
    ServiceProcess,
    Stack,
    free_port,
    membership_process,
    service_process,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what needs the Kafka broker (`broker`): every e2e test, and any test that
    makes topics. `scripts/test --fast` runs the rest, with PostgreSQL only."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "/tests/e2e/" in str(item.path) or "/tests/fuzz/" in str(item.path) or "topic_prefix" in fixtures:
            item.add_marker(pytest.mark.broker)


@pytest.fixture(scope="session")
def stack() -> Stack:
    return Stack.from_env()


@pytest.fixture
async def topic_prefix(stack: Stack) -> AsyncIterator[str]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(stack.bootstrap, PLATFORM_TOPICS, prefix)
    yield prefix
    # Each test makes ~50 topics; deleting them keeps one broker's metadata (and heap) small
    # over a whole suite run. Best effort: a failure here says nothing about the test.
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    with contextlib.suppress(Exception):
        await admin.start()
        await admin.delete_topics([prefix + t.name for t in PLATFORM_TOPICS], timeout_ms=30_000)
    with contextlib.suppress(Exception):
        await admin.close()


@pytest.fixture
async def membership_db(stack: Stack) -> str:
    return await stack.create_database(owner="membership")


@pytest.fixture
async def membership_conn(stack: Stack, membership_db: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(stack.service_dsn("membership", membership_db))
    yield conn
    await conn.close()


@pytest.fixture
def membership_service(stack: Stack, topic_prefix: str, membership_db: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    """The membership service as its own process, not yet started."""
    service = membership_process(
        stack, membership_db, topic_prefix, f"membership-{uuid.uuid4().hex[:6]}", tmp_path / "membership.log"
    )
    service.env["ALUMNI_SIGNING_KEYS"] = SIGNING_KEYS
    # The tests open sealed messages as one more key client (tests/stack.py opened_values).
    service.env["MEMBERSHIP_KEY_CLIENTS"] = '["consent", "mailer", "events", "tests"]'
    yield service
    service.stop()


def needs_keys_from(service: ServiceProcess, membership: ServiceProcess) -> None:
    service.env["ALUMNI_MEMBERSHIP_URL"] = membership.url
    service.requires.append(membership)


@pytest.fixture
async def consent_db(stack: Stack) -> str:
    return await stack.create_database(owner="consent")


@pytest.fixture
async def consent_conn(stack: Stack, consent_db: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(stack.service_dsn("consent", consent_db))
    yield conn
    await conn.close()


@pytest.fixture
def consent_service(
    stack: Stack, topic_prefix: str, consent_db: str, membership_service: ServiceProcess, tmp_path: Path
) -> Iterator[ServiceProcess]:
    """The consent service as its own process, not yet started (starting it starts
    membership too when needed: members' keys live there)."""
    service = service_process(
        stack, "consent", consent_db, topic_prefix, f"consent-{uuid.uuid4().hex[:6]}", tmp_path / "consent.log"
    )
    service.env["ALUMNI_SIGNING_KEYS"] = SIGNING_KEYS
    needs_keys_from(service, membership_service)
    yield service
    service.stop()


@pytest.fixture
async def events_db(stack: Stack) -> str:
    return await stack.create_database(owner="events")


@pytest.fixture
async def events_conn(stack: Stack, events_db: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(stack.service_dsn("events", events_db))
    yield conn
    await conn.close()


@pytest.fixture
def events_service(stack: Stack, topic_prefix: str, events_db: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    """The events service as its own process, not yet started. Only its mail needs keys from
    membership (it seals each mail with the member's key): a test of mail starts membership
    with it (tests/e2e/test_events_mail.py); the others run without."""
    service = service_process(
        stack, "events", events_db, topic_prefix, f"events-{uuid.uuid4().hex[:6]}", tmp_path / "events.log"
    )
    service.env["ALUMNI_SIGNING_KEYS"] = SIGNING_KEYS
    # Expired offers are found within half a second (the tests give offers seconds, not hours).
    service.env["EVENTS_OFFER_SWEEP_SECONDS"] = "0.5"
    yield service
    service.stop()


@pytest.fixture
async def analytics_db(stack: Stack) -> str:
    return await stack.create_database(owner="analytics")


@pytest.fixture
async def analytics_conn(stack: Stack, analytics_db: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(stack.service_dsn("analytics", analytics_db))
    yield conn
    await conn.close()


@pytest.fixture
def analytics_service(stack: Stack, topic_prefix: str, analytics_db: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    """The analytics service as its own process, not yet started. Tests publish member facts
    unsealed (tests/events.py), so it needs no keys from membership unless a test says so
    (`needs_keys_from`)."""
    service = service_process(
        stack, "analytics", analytics_db, topic_prefix, f"analytics-{uuid.uuid4().hex[:6]}", tmp_path / "analytics.log"
    )
    service.env["ALUMNI_SIGNING_KEYS"] = SIGNING_KEYS
    service.env["ANALYTICS_ERASURE_PEPPER"] = ANALYTICS_PEPPER.decode()
    yield service
    service.stop()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) standing in for the university's relay."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
async def mailer_db(stack: Stack) -> str:
    return await stack.create_database(owner="mailer")


@pytest.fixture
async def mailer_conn(stack: Stack, mailer_db: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(stack.service_dsn("mailer", mailer_db))
    yield conn
    await conn.close()


@pytest.fixture
def mailer_service(
    stack: Stack,
    topic_prefix: str,
    mailer_db: str,
    smtp_sink: SmtpSink,
    membership_service: ServiceProcess,
    tmp_path: Path,
) -> Iterator[ServiceProcess]:
    """The mailer as its own process, sending to `smtp_sink`, not yet started (with membership for keys)."""
    service = service_process(
        stack, "mailer", mailer_db, topic_prefix, f"mailer-{uuid.uuid4().hex[:6]}", tmp_path / "mailer.log"
    )
    needs_keys_from(service, membership_service)
    service.env.update(
        {
            "ALUMNI_SIGNING_KEYS": SIGNING_KEYS,
            "MAILER_SMTP_PORT": str(smtp_sink.port),
            "MAILER_BOUNCE_LISTEN_PORT": str(free_port()),
            "MAILER_CONSENT_BASE_URL": "https://alumni.usn.no",
            "MAILER_RETRY_BASE_SECONDS": "0.2",
        }
    )
    yield service
    service.stop()
