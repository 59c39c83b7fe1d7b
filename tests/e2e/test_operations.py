"""What operators see (issue 14): one trace from `graduated` to the SMTP hand-off, and the metrics.

Membership, consent and the mailer run as their own processes and export spans
with the OpenTelemetry SDK's OTLP/HTTP exporter to a real OTLP receiver
(tests/otlp.py); their /metrics are scraped as Prometheus would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.graduations import graduation
from tests.e2e.test_staff_api import staff_headers
from tests.otlp import OtlpReceiver, ReceivedSpan
from tests.smtp import SmtpSink
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish

pytestmark = pytest.mark.real

FS_TRACE = "5bf92f3577b34da6a3ce929d0e0e4736"
FS_SPAN = "00f067aa0ba902b7"  # the span in FS that published the graduation
CONSUMER, PRODUCER, CLIENT = 5, 4, 3  # opentelemetry.proto SpanKind


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def _observed(service: ServiceProcess, otlp: OtlpReceiver) -> None:
    prefix = service.module.upper()
    service.env.update(
        {
            f"{prefix}_OTEL_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within 0.1 s (5 s by default)
            f"{prefix}_LAG_INTERVAL_SECONDS": "0.3",
        }
    )


async def test_one_trace_follows_the_graduate_to_the_smtp_hand_off_and_the_metrics_show_it(
    stack: Stack,
    topic_prefix: str,
    membership_service: ServiceProcess,
    consent_service: ServiceProcess,
    mailer_service: ServiceProcess,
    membership_conn: asyncpg.Connection,
    smtp_sink: SmtpSink,
    otlp: OtlpReceiver,
) -> None:
    for service in (membership_service, consent_service, mailer_service):
        _observed(service, otlp)
    membership_service.env["MEMBERSHIP_LOG_LEVEL"] = "DEBUG"  # the consumer's line per batch, in its span
    sn, email = "833301", "ingrid.trace@example.no"
    event = graduation("trace-grad-1", sn, email=email, faculty="HS")
    traceparent = [("traceparent", f"00-{FS_TRACE}-{FS_SPAN}-01".encode())]
    await publish(stack.bootstrap, topic_prefix + "graduated", [event_bytes(event)], headers=traceparent)

    for service in (membership_service, consent_service, mailer_service):
        service.start()  # side by side: each spends its start mostly waiting for its consumer groups
    await asyncio.gather(*(s.wait_ready(90) for s in (membership_service, consent_service, mailer_service)))
    [mail] = await smtp_sink.wait_for(1, timeout=90)
    assert mail.recipients == (email,)

    smtp = await eventually(lambda: _span_named(otlp, "smtp send"), what="the SMTP span")
    await eventually(lambda: _has_root(otlp), what="every span of the trace")
    chain = _chain_to_root(otlp.spans(), smtp)
    p = topic_prefix
    assert [(s.service.removeprefix("usn-alumni-"), s.name) for s in chain] == [
        ("mailer", "smtp send"),
        ("mailer", f"process {p}transactional-mail-requested"),
        ("consent", f"publish {p}transactional-mail-requested"),
        ("consent", f"process {p}member-registered"),
        ("membership", f"publish {p}member-registered"),
        ("membership", "membership apply graduated"),
        ("membership", f"process {p}graduated"),
    ]
    assert {s.trace_id for s in chain} == {FS_TRACE}
    assert chain[-1].parent_span_id == FS_SPAN  # continues FS's own span
    assert chain[0].kind == CLIENT
    assert chain[0].attributes["server.port"] == smtp_sink.port
    _assert_messaging_conventions(chain, p, membership_service, consent_service, mailer_service)

    member_id = await membership_conn.fetchval("SELECT member_id::text FROM members")
    personal = [sn, email, "Åse", "Ødegård", "ingrid", str(member_id)]
    for s in [s for s in otlp.spans() if s.trace_id == FS_TRACE]:
        assert not [v for v in s.attributes.values() if any(x.lower() in str(v).lower() for x in personal)], s

    # Logs carry the trace: membership's consumer line for that batch, written in its span.
    log = membership_service.log_path.read_text()
    assert f"trace={FS_TRACE} span=" in log
    assert all("[trace=" in line for line in log.splitlines() if " membership " in line[:60])

    # A duplicate, a message that is no event, and a graduate whose address the relay refuses (5xx):
    # messages by outcome, the DLQ count, SMTP sends and bounces.
    bouncing = "no.such.mailbox@example.no"
    personal.append(bouncing)
    smtp_sink.reject(bouncing)
    second = graduation("trace-grad-2", "833302", email=bouncing, faculty="HS")
    junk = (sn.encode(), b"{not json")
    await publish(stack.bootstrap, p + "graduated", [event_bytes(event), junk, event_bytes(second)])
    async with httpx.AsyncClient(base_url=membership_service.url) as client:
        assert (await client.get(f"/members/{member_id}", headers=staff_headers("comms"))).status_code == 200
        assert (await client.get(f"/nothing/{email}")).status_code == 404

    async def membership_settled() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        m = await _scrape(membership_service)
        lags = [v for (name, labels), v in m.items() if name == "alumni_consumer_lag_messages"]
        graduated = _series(m, "alumni_consumer_lag_messages", topic=p + "graduated")
        consumed = _value(m, "alumni_messages_handled_total", topic=p + "graduated", outcome="dead_lettered") == 1
        published = _series(m, "alumni_messages_produced_total", topic="member-registered")  # the relay's own name
        done = consumed and list(published.values()) == [2]
        return m if done and len(graduated) == 6 and not any(lags) else None

    m = await eventually(membership_settled, what="membership's lag back to 0 with every outcome counted")
    g = p + "graduated"
    assert _value(m, "alumni_messages_handled_total", topic=g, outcome="ok") == 2
    assert _value(m, "alumni_messages_handled_total", topic=g, outcome="duplicate") == 1
    assert _value(m, "alumni_messages_handled_total", topic=g, outcome="retried") == 0
    assert sum(_series(m, "alumni_messages_dead_lettered_total", topic=g).values()) == 1
    assert _value(m, "alumni_handler_duration_seconds_count", topic=g) >= 1
    assert _value(m, "alumni_outbox_backlog_messages") == 0
    assert _value(m, "alumni_outbox_oldest_unsent_age_seconds") == 0
    member_route = {"method": "GET", "route": "/members/{member_id}"}
    assert _value(m, "alumni_http_requests_total", **member_route, status="200") == 1
    assert _value(m, "alumni_http_request_duration_seconds_count", **member_route) == 1
    assert _value(m, "alumni_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert _value(m, "process_cpu_seconds_total") > 0
    assert _value(m, "process_resident_memory_bytes") > 10_000_000
    assert _series(m, "python_info")

    async def mailer_bounced() -> Metrics | None:
        found = await _scrape(mailer_service)
        return found if _value(found, "alumni_smtp_sends_total", outcome="bounced") == 1 else None

    mailer = await eventually(mailer_bounced, what="the mailer's hand-off of the refused address")
    assert _value(mailer, "alumni_smtp_sends_total", outcome="sent") == 1
    assert _value(mailer, "alumni_email_bounces_total", kind="hard") == 1
    assert _value(mailer, "alumni_email_bounces_total", kind="soft") == 0
    assert _value(mailer, "alumni_messages_handled_total", topic=p + "transactional-mail-requested", outcome="ok") == 2
    consent = await _scrape(consent_service)
    assert set(_series(consent, "alumni_consumer_lag_messages", topic=p + "member-registered").values()) == {0}

    # Nothing personal and no raw path in any label of any service.
    for service in (membership_service, consent_service, mailer_service):
        text = httpx.get(f"{service.url}/metrics").text
        assert not [x for x in [*personal, "/nothing/"] if x.lower() in text.lower()], service.module


async def _span_named(otlp: OtlpReceiver, name: str) -> ReceivedSpan | None:
    return next((s for s in otlp.spans() if s.name == name and s.trace_id == FS_TRACE), None)


async def _has_root(otlp: OtlpReceiver) -> bool:
    """The first span of the trace here (the one continuing FS's) has arrived too."""
    return any(s.parent_span_id == FS_SPAN for s in otlp.spans())


def _chain_to_root(spans: list[ReceivedSpan], leaf: ReceivedSpan) -> list[ReceivedSpan]:
    """`leaf` and its ancestors up to the first span whose parent is not among `spans`."""
    by_id = {s.span_id: s for s in spans}
    chain = [leaf]
    while chain[-1].parent_span_id in by_id:
        chain.append(by_id[chain[-1].parent_span_id])
        assert len(chain) < 50, "a cycle in the parent links"
    return chain


def _assert_messaging_conventions(chain: list[ReceivedSpan], prefix: str, *services: ServiceProcess) -> None:
    groups = {s.module: s.env[f"{s.module.upper()}_GROUP_ID"] for s in services}
    for span in chain:
        a = span.attributes
        if span.kind == CONSUMER:
            topic = span.name.removeprefix("process ")
            assert a["messaging.system"] == "kafka"
            assert a["messaging.operation.type"] == "process"
            assert a["messaging.destination.name"] == topic
            assert int(a["messaging.destination.partition.id"]) >= 0
            assert a["messaging.kafka.offset"] == 0  # the first record of its partition
            # Each service has one group per topic: <group>.<topic without the test's prefix>.
            group = f"{groups[span.service.removeprefix('usn-alumni-')]}.{topic.removeprefix(prefix)}"
            assert a["messaging.consumer.group.name"] == group
        elif span.kind == PRODUCER:
            assert a["messaging.system"] == "kafka"
            assert a["messaging.operation.type"] == "publish"
            assert a["messaging.destination.name"] == span.name.removeprefix("publish ")
            assert int(a["messaging.destination.partition.id"]) >= 0
            assert a["messaging.kafka.offset"] == 0


Metrics = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _scrape(service: ServiceProcess) -> Metrics:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{service.url}/metrics")).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _series(m: Metrics, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    want = set(labels.items())
    return {k: v for (n, k), v in m.items() if n == name and want <= k}


def _value(m: Metrics, name: str, **labels: Any) -> float:
    found = _series(m, name, **labels)
    assert len(found) == 1, f"{name}{labels}: {found or 'no such series'}"
    return next(iter(found.values()))
