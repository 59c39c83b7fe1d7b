"""Generate the Grafana dashboards in deploy/grafana/dashboards from one description.

python -m usn_tools.dashboards          # write the overview and one dashboard per service
python -m usn_tools.dashboards --check  # exit 1 if a checked-in dashboard is stale

Every service exposes the kit's metrics (consumer lag, handled messages, handler
duration, dead letters, outbox, HTTP, process), so a service's dashboard is the
kit's panels plus a few of its own; written out as JSON, they would be six copies
of the same panels to keep in step. `usn-alumni-pipeline.json` is hand-written
and not generated. tests/unit/test_dashboards.py checks every dashboard's queries.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "[$__rate_interval]"


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    # (PromQL, legend) per query; the first is refId A.
    queries: list[tuple[str, str]]
    unit: str = "short"
    kind: str = "timeseries"  # or "stat"
    # stat: the value from which the panel turns orange (None: never)
    warn_from: float | None = None
    stacked: bool = False


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: list[tuple[str, list[Panel]]] = field(default_factory=list)
    service_variable: bool = False


def _sel(service: str, extra: str = "") -> str:
    """The label matchers for one service's series (or `$service` in the overview)."""
    matcher = 'service=~"$service"' if service == "$service" else f'service="{service}"'
    return "{" + ", ".join(m for m in ('job="usn-alumni"', matcher, extra) if m) + "}"


def kit_panels(service: str) -> list[tuple[str, list[Panel]]]:
    """What every service shows: the kit's metrics (alumni_kit.metrics)."""
    s = _sel(service)
    http_5xx = _sel(service, 'status=~"5.."')
    return [
        (
            "Health",
            [
                Panel("Targets up", "Replicas Prometheus scrapes successfully.", [(f"sum(up{s})", "")], kind="stat"),
                Panel(
                    "Consumer lag",
                    "Messages not yet applied, over every topic and partition this service consumes.",
                    [(f"sum(alumni_consumer_lag_messages{s}) or vector(0)", "")],
                    kind="stat",
                    warn_from=1000,
                ),
                Panel(
                    "Dead letters (24 h)",
                    "Messages sent to <topic>.dlq in the last 24 hours: `alumni dlq list` shows why.",
                    [(f"round(sum(increase(alumni_messages_dead_lettered_total{s}[24h]))) or vector(0)", "")],
                    kind="stat",
                    warn_from=1,
                ),
                Panel(
                    "Oldest unsent outbox row",
                    "Age of the oldest fact waiting in the outbox (0: empty). Over 5 minutes is an alert.",
                    [(f"max(alumni_outbox_oldest_unsent_age_seconds{s})", "")],
                    unit="s",
                    kind="stat",
                    warn_from=60,
                ),
            ],
        ),
        (
            "Consumers",
            [
                Panel(
                    "Consumer lag by topic",
                    "End offset minus the position applied, summed over partitions (and replicas).",
                    [(f"sum by (topic) (alumni_consumer_lag_messages{s})", "{{topic}}")],
                ),
                Panel(
                    "Consumer lag by partition",
                    "One line per partition: a single partition that grows is a stuck or slow key.",
                    [(f"sum by (topic, partition) (alumni_consumer_lag_messages{s})", "{{topic}} · {{partition}}")],
                ),
                Panel(
                    "Messages handled by outcome",
                    "Per second, by topic and outcome (ok, duplicate, dead_lettered, retried).",
                    [
                        (
                            f"sum by (topic, outcome) (rate(alumni_messages_handled_total{s}{RATE}))",
                            "{{topic}} · {{outcome}}",
                        )
                    ],
                    unit="ops",
                    stacked=True,
                ),
                Panel(
                    "Handler duration p99",
                    "99th percentile of the time to handle one message, by topic.",
                    [
                        (
                            "histogram_quantile(0.99, sum by (topic, le) "
                            f"(rate(alumni_handler_duration_seconds_bucket{s}{RATE})))",
                            "{{topic}}",
                        )
                    ],
                    unit="s",
                ),
                Panel(
                    "Dead letters by topic and reason kind",
                    "Per second; the <topic>.dlq headers say why, never with the values.",
                    [
                        (
                            f"sum by (topic, kind) (rate(alumni_messages_dead_lettered_total{s}{RATE}))",
                            "{{topic}} · {{kind}}",
                        )
                    ],
                    unit="ops",
                ),
                Panel(
                    "Transient retries",
                    "Retries after the database or the broker did not answer, by operation.",
                    [(f"sum by (operation) (rate(alumni_transient_retries_total{s}{RATE}))", "{{operation}}")],
                    unit="ops",
                ),
            ],
        ),
        (
            "Outbox",
            [
                Panel(
                    "Outbox backlog",
                    "Facts committed and not yet published.",
                    [(f"max(alumni_outbox_backlog_messages{s})", "backlog")],
                ),
                Panel(
                    "Oldest unsent outbox row",
                    "Age of the oldest unpublished fact.",
                    [(f"max(alumni_outbox_oldest_unsent_age_seconds{s})", "age")],
                    unit="s",
                ),
                Panel(
                    "Published by topic",
                    "Facts the outbox relay published per second.",
                    [(f"sum by (topic) (rate(alumni_messages_produced_total{s}{RATE}))", "{{topic}}")],
                    unit="ops",
                    stacked=True,
                ),
                Panel(
                    "Quarantined outbox rows",
                    "Rows the broker refused for good, waiting for an operator (usn_tools.outbox).",
                    [(f"max by (topic) (alumni_outbox_quarantined_rows{s})", "{{topic}}")],
                ),
            ],
        ),
        (
            "HTTP",
            [
                Panel(
                    "Requests by route and status",
                    "Per second, by route template (never the raw path) and status code.",
                    [
                        (
                            f"sum by (route, status) (rate(alumni_http_requests_total{s}{RATE}))",
                            "{{route}} · {{status}}",
                        )
                    ],
                    unit="reqps",
                    stacked=True,
                ),
                Panel(
                    "Server errors",
                    "Share of answers with a 5xx status.",
                    [
                        (
                            f"sum(rate(alumni_http_requests_total{http_5xx}{RATE})) "
                            f"/ sum(rate(alumni_http_requests_total{s}{RATE}))",
                            "5xx share",
                        )
                    ],
                    unit="percentunit",
                ),
                Panel(
                    "Request duration p99 by route",
                    "99th percentile of the answer time, by route template.",
                    [
                        (
                            "histogram_quantile(0.99, sum by (route, le) "
                            f"(rate(alumni_http_request_duration_seconds_bucket{s}{RATE})))",
                            "{{route}}",
                        )
                    ],
                    unit="s",
                ),
                Panel(
                    "Resident memory",
                    "Per replica (the limit is 256 MiB in compose and Kubernetes).",
                    [(f"process_resident_memory_bytes{s}", "{{instance}}")],
                    unit="bytes",
                ),
                Panel(
                    "CPU",
                    "CPU seconds per second, per replica.",
                    [(f"rate(process_cpu_seconds_total{s}{RATE})", "{{instance}}")],
                    unit="percentunit",
                ),
            ],
        ),
    ]


def _counter(title: str, description: str, metric: str, service: str, by: str, unit: str = "ops") -> Panel:
    legend = " · ".join("{{" + label.strip() + "}}" for label in by.split(",")) if by else title
    grouping = f" by ({by})" if by else ""
    return Panel(
        title, description, [(f"sum{grouping} (rate({metric}{_sel(service)}{RATE}))", legend)], unit=unit, stacked=True
    )


def service_panels(service: str) -> list[Panel]:
    """A service's own metrics (its metrics module)."""
    if service == "membership":
        return [
            _counter(
                "Member changes", "Members registered or updated.", "membership_member_changes_total", service, "kind"
            ),
            _counter(
                "Graduations not qualifying",
                "Graduations the eligibility policy does not count, by degree level.",
                "membership_graduations_not_qualifying_total",
                service,
                "degree_level",
            ),
            _counter(
                "Field defects",
                "Invalid optional fields left out of a member, by field.",
                "membership_field_defects_total",
                service,
                "field",
            ),
            _counter(
                "Graduations of erased members",
                "Replayed graduations of erased members, ignored.",
                "membership_graduations_of_erased_total",
                service,
                "",
            ),
        ]
    if service == "consent":
        return [
            _counter(
                "Consent facts",
                "Facts appended to the ledger, by channel, purpose and state.",
                "consent_facts_recorded_total",
                service,
                "channel, purpose, state",
            ),
            _counter(
                "Mail requested",
                "Transactional mails asked of the mailer.",
                "consent_mail_requests_total",
                service,
                "kind",
            ),
            _counter(
                "Invitations not sent",
                "New members with an address who got no invitation, by why.",
                "consent_invitations_not_sent_total",
                service,
                "why",
            ),
            _counter(
                "Member links refused",
                "Forged, altered or expired links, by page and why.",
                "consent_links_refused_total",
                service,
                "page, why",
            ),
        ]
    if service == "mailer":
        sends = "alumni_smtp_sends_total" + _sel(service, 'outcome=~"sent|bounced"')
        hard = "alumni_email_bounces_total" + _sel(service, 'kind="hard"')
        return [
            _counter(
                "SMTP hand-offs",
                "Messages handed to the relay, by its answer.",
                "alumni_smtp_sends_total",
                service,
                "outcome",
            ),
            _counter(
                "Bounces",
                "Hard and soft bounces (hand-off 5xx and DSNs).",
                "alumni_email_bounces_total",
                service,
                "kind",
            ),
            Panel(
                "Hard bounce rate (1 h)",
                "Hard bounces over hand-offs in the last hour; over 5 % (with 100 hand-offs) is an alert.",
                [(f"sum(increase({hard}[1h])) / sum(increase({sends}[1h]))", "hard bounces")],
                unit="percentunit",
            ),
            _counter("Deliveries", "Send attempts by outcome.", "mailer_deliveries_total", service, "outcome"),
            _counter(
                "Recipients skipped",
                "Recipients not sent to, by reason.",
                "mailer_deliveries_skipped_total",
                service,
                "reason",
            ),
            _counter(
                "Relay pauses",
                "Times sending paused because the relay was down.",
                "mailer_relay_pauses_total",
                service,
                "",
            ),
        ]
    if service == "events":
        return [
            _counter(
                "Registrations by outcome",
                "Registered, waitlisted, or the refusal's status code.",
                "events_registrations_total",
                service,
                "outcome",
            ),
            _counter(
                "Offers expired",
                "Waiting-list offers that ran out of time.",
                "events_offers_expired_total",
                service,
                "",
            ),
            _counter(
                "Offer sweep failures",
                "Sweep rounds that failed (retried).",
                "events_offer_sweep_failures_total",
                service,
                "",
            ),
        ]
    return []  # analytics: the kit's panels; its own metrics come with the service


SERVICES = ["membership", "consent", "mailer", "events", "analytics"]


def overview() -> Dashboard:
    s = _sel("$service")
    s_5xx = _sel("$service", 'status=~"5.."')
    rows: list[tuple[str, list[Panel]]] = [
        (
            "Platform",
            [
                Panel(
                    "Services up",
                    "Targets of job usn-alumni answering scrapes.",
                    [('count(up{job="usn-alumni"} == 1) or vector(0)', "")],
                    kind="stat",
                ),
                Panel(
                    "Targets down",
                    "Targets of job usn-alumni Prometheus cannot scrape.",
                    [('count(up{job="usn-alumni"} == 0) or vector(0)', "")],
                    kind="stat",
                    warn_from=1,
                ),
                Panel(
                    "Alerts firing",
                    "USN Alumni alerts firing now (Prometheus /alerts).",
                    [('count(ALERTS{alertstate="firing", alertname=~"Alumni.*"}) or vector(0)', "")],
                    kind="stat",
                    warn_from=1,
                ),
                Panel(
                    "Consumer lag",
                    "Messages not yet applied, over every service, topic and partition.",
                    [(f"sum(alumni_consumer_lag_messages{s}) or vector(0)", "")],
                    kind="stat",
                    warn_from=1000,
                ),
            ],
        ),
        (
            "Services",
            [
                Panel(
                    "Up by service", "1 per replica answering scrapes.", [(f"sum by (service) (up{s})", "{{service}}")]
                ),
                Panel(
                    "Consumer lag by service",
                    "Summed over topics and partitions.",
                    [(f"sum by (service) (alumni_consumer_lag_messages{s})", "{{service}}")],
                ),
                Panel(
                    "Messages handled by service",
                    "Per second, every topic and outcome.",
                    [(f"sum by (service) (rate(alumni_messages_handled_total{s}{RATE}))", "{{service}}")],
                    unit="ops",
                    stacked=True,
                ),
                Panel(
                    "Dead letters by service",
                    "Per second.",
                    [(f"sum by (service) (rate(alumni_messages_dead_lettered_total{s}{RATE}))", "{{service}}")],
                    unit="ops",
                ),
                Panel(
                    "Outbox backlog by service",
                    "Facts committed and not yet published.",
                    [(f"max by (service) (alumni_outbox_backlog_messages{s})", "{{service}}")],
                ),
                Panel(
                    "Oldest unsent outbox row by service",
                    "Age of the oldest unpublished fact.",
                    [(f"max by (service) (alumni_outbox_oldest_unsent_age_seconds{s})", "{{service}}")],
                    unit="s",
                ),
                Panel(
                    "HTTP requests by service",
                    "Per second.",
                    [(f"sum by (service) (rate(alumni_http_requests_total{s}{RATE}))", "{{service}}")],
                    unit="reqps",
                    stacked=True,
                ),
                Panel(
                    "HTTP server errors by service",
                    "Share of answers with a 5xx status.",
                    [
                        (
                            f"sum by (service) (rate(alumni_http_requests_total{s_5xx}{RATE})) "
                            f"/ sum by (service) (rate(alumni_http_requests_total{s}{RATE}))",
                            "{{service}}",
                        )
                    ],
                    unit="percentunit",
                ),
            ],
        ),
    ]
    return Dashboard(
        "usn-alumni-overview",
        "USN Alumni — overview",
        "Every service at a glance: up, lag, handled messages, dead letters, outbox, HTTP. "
        "One dashboard per service below it (links).",
        rows,
        service_variable=True,
    )


def service_dashboard(service: str) -> Dashboard:
    rows = kit_panels(service)
    own = service_panels(service)
    if own:
        rows.insert(1, (f"{service}", own))
    return Dashboard(
        f"usn-alumni-{service}",
        f"USN Alumni — {service}",
        f"The {service} service: its consumers, outbox, HTTP API and its own metrics.",
        rows,
    )


def _panel_json(panel: Panel, pid: int, x: int, y: int, w: int, h: int) -> dict[str, Any]:
    targets = [
        {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": chr(ord("A") + i)}
        | ({"instant": True, "range": False} if panel.kind == "stat" else {"range": True})
        for i, (expr, legend) in enumerate(panel.queries)
    ]
    out: dict[str, Any] = {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
    }
    if panel.kind == "stat":
        steps: list[dict[str, Any]] = [{"value": None, "color": "green"}]
        if panel.warn_from is not None:
            steps.append({"value": panel.warn_from, "color": "orange"})
        out["fieldConfig"] = {
            "defaults": {
                "unit": panel.unit,
                "color": {"mode": "thresholds"},
                "thresholds": {"mode": "absolute", "steps": steps},
            },
            "overrides": [],
        }
        out["options"] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "value",
        }
    else:
        custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never"}
        if panel.stacked:
            custom["stacking"] = {"mode": "normal", "group": "A"}
        out["fieldConfig"] = {
            "defaults": {"unit": panel.unit, "min": 0, "color": {"mode": "palette-classic"}, "custom": custom},
            "overrides": [],
        }
        out["options"] = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    return out


def to_json(d: Dashboard) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y = 0
    pid = 1
    for title, row in d.rows:
        panels.append(
            {
                "id": pid,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
                "panels": [],
            }
        )
        pid += 1
        y += 1
        stats = all(p.kind == "stat" for p in row)
        w, h = (24 // max(1, len(row)), 4) if stats else (12, 8)
        for i, panel in enumerate(row):
            x = (i * w) % 24
            if i and x == 0:
                y += h
            panels.append(_panel_json(panel, pid, x, y, w, h))
            pid += 1
        y += h
    variables: list[dict[str, Any]] = [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {"text": "Prometheus", "value": "prometheus"},
            "hide": 0,
        }
    ]
    if d.service_variable:
        variables.append(
            {
                "name": "service",
                "label": "Service",
                "type": "query",
                "datasource": DATASOURCE,
                "query": {"query": 'label_values(up{job="usn-alumni"}, service)', "refId": "service"},
                "definition": 'label_values(up{job="usn-alumni"}, service)',
                "current": {"text": "All", "value": "$__all"},
                "includeAll": True,
                "allValue": ".*",
                "multi": True,
                "refresh": 2,
                "sort": 1,
            }
        )
    return {
        "uid": d.uid,
        "title": d.title,
        "description": d.description,
        "tags": ["usn-alumni"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        # Every USN Alumni dashboard links to the others (by tag).
        "links": [
            {
                "type": "dashboards",
                "tags": ["usn-alumni"],
                "asDropdown": True,
                "title": "USN Alumni",
                "includeVars": False,
            }
        ],
        "annotations": {"list": []},
        "templating": {"list": variables},
        "panels": panels,
    }


def dashboards() -> dict[str, Dashboard]:
    """File name (in deploy/grafana/dashboards) -> dashboard."""
    out = {"usn-alumni-overview.json": overview()}
    out |= {f"usn-alumni-{s}.json": service_dashboard(s) for s in SERVICES}
    return out


def render(d: Dashboard) -> str:
    return json.dumps(to_json(d), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="usn_tools.dashboards")
    parser.add_argument("--check", action="store_true", help="fail if a checked-in dashboard differs")
    args = parser.parse_args(argv)
    stale = []
    for name, d in dashboards().items():
        path = OUT / name
        text = render(d)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print("stale dashboards (run python -m usn_tools.dashboards):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
