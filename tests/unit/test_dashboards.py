"""The Grafana dashboards and the alert rules query what the services expose.

Every dashboard is valid JSON with a unique uid, is current with its generator
(usn_tools.dashboards), and Grafana's provisioning in docker-compose.yml loads the
folder it is in. Every PromQL query (the dashboards' and alerts.yml's) is parsed by
Prometheus' own parser (promtool), and every metric it names is one a service
registers (from each service's app, built here without running it), a
name pinned for a service not yet on main, or one Prometheus makes itself.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from usn_tools import dashboards

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
ALL = sorted(DASHBOARDS.glob("*.json"))
# The services with an app on this branch (analytics' dashboard uses the kit's names only).
SERVICES_ON_MAIN = sorted(p.parent.name for p in ROOT.glob("services/*/src/*/app.py") if p.parent.name != "alumni_kit")

# Names other helpers' services expose once they land (docs/operations.md lists them).
PINNED = {
    "alumni_consumer_lag_messages",
    "alumni_messages_handled_total",
    "alumni_handler_duration_seconds_bucket",
    "alumni_outbox_backlog_messages",
    "alumni_outbox_oldest_unsent_age_seconds",
    "alumni_messages_dead_lettered_total",
    "alumni_http_requests_total",
    "alumni_http_request_duration_seconds_bucket",
    "alumni_smtp_sends_total",
    "alumni_email_bounces_total",
}
# Series Prometheus itself writes: scrape health, alert state, the blackbox exporter's probes.
PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "probe_success"}

SUFFIXES = {
    "counter": ["_total", "_created"],
    "gauge": [""],
    "histogram": ["_bucket", "_sum", "_count", "_created"],
    "summary": ["", "_sum", "_count", "_created"],
    "info": ["_info"],
}


@functools.cache
def exposed_names() -> frozenset[str]:
    """Every series name the services' apps can expose (labelled children or not).

    Each app is built as its process builds it (nothing connects before its lifespan
    starts), so a metric a router registers counts as well as its metrics module's.
    """
    names: set[str] = set()
    for service in SERVICES_ON_MAIN:
        app = importlib.import_module(f"{service}.app").create_app()
        for family in app.state.runtime.metrics.registry.collect():
            names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, [""])}
            names |= {sample.name for sample in family.samples}
    return frozenset(names)


# PromQL words that are not metric names (functions are told apart by the "(" after them).
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (strings, label sets, groupings and ranges removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"(?<![A-Za-z0-9_:])\d[\d.e+]*(?:ms|[smhdwy])?", " ", text)  # numbers, durations
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        after = text[match.end() :].lstrip()
        if word in KEYWORDS or after.startswith("("):
            continue
        if text[: match.start()].rstrip().endswith(("$", "{")):
            continue
        names.add(word)
    return names


def grafana_to_promql(expr: str) -> str:
    """Grafana's variables replaced by what it would send."""
    return expr.replace("$__rate_interval", "1m").replace("$__range", "1h").replace("$service", ".*")


def dashboard_queries(path: Path) -> list[tuple[str, str]]:
    doc = json.loads(path.read_text())
    out = []
    for panel in doc["panels"]:
        for target in panel.get("targets", []):
            out.append((f"{panel['title']} / {target['refId']}", target["expr"]))
    return out


def alert_queries() -> list[tuple[str, str]]:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    return [(rule["alert"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def test_dashboards_are_current_with_their_generator() -> None:
    assert dashboards.main(["--check"]) == 0, "run python -m usn_tools.dashboards"


def test_an_overview_and_one_dashboard_per_service() -> None:
    uids = [json.loads(p.read_text())["uid"] for p in ALL]
    assert len(uids) == len(set(uids)), uids
    expected = {"usn-alumni-overview", "usn-alumni-pipeline"} | {f"usn-alumni-{s}" for s in dashboards.SERVICES}
    assert set(uids) == expected
    for service in ("membership", "consent", "mailer", "events", "analytics"):
        queries = " ".join(expr for _, expr in dashboard_queries(DASHBOARDS / f"usn-alumni-{service}.json"))
        assert f'service="{service}"' in queries
        assert "alumni_consumer_lag_messages" in queries
        assert "alumni_http_requests_total" in queries


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_panel_uses_the_provisioned_prometheus(path: Path) -> None:
    doc: dict[str, Any] = json.loads(path.read_text())
    assert doc["panels"], path
    for panel in doc["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in [panel, *panel["targets"]]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
    (variable,) = [v for v in doc["templating"]["list"] if v["name"] == "datasource"]
    provisioned = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/datasources.yml").read_text())
    assert variable["current"]["value"] in {d["uid"] for d in provisioned["datasources"] if d["type"] == "prometheus"}


def test_provisioning_loads_the_dashboards_folder() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = dict(v.removesuffix(":ro").split(":", 1) for v in grafana["volumes"] if v.startswith("./"))
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/usn-alumni.yml").read_text())
    (options,) = [p["options"] for p in provider["providers"]]
    assert mounts["./deploy/grafana/dashboards"] == options["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(options["path"] + "/")
    assert (DASHBOARDS / home.removeprefix(options["path"] + "/")).is_file()


def test_every_query_parses_with_prometheus_own_parser(tmp_path: Path) -> None:
    """promtool check rules parses each query as a recording rule's expression."""
    queries = [(f"{p.name}: {title}", grafana_to_promql(e)) for p in ALL for title, e in dashboard_queries(p)]
    assert len(queries) > 100
    rules = {"groups": [{"name": "q", "rules": [{"record": f"q:{i}", "expr": e} for i, (_, e) in enumerate(queries)]}]}
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    failed = [queries[int(i)][0] for i in re.findall(r"q:(\d+)", checked.stderr + checked.stdout)]
    assert checked.returncode == 0, (failed, checked.stderr[-2000:])


def test_the_parse_check_refuses_a_broken_query(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "q", "rules": [{"record": "q:0", "expr": "sum by (a (x)"}]}]}))
    assert subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True).returncode != 0


def test_every_metric_named_is_exposed_or_pinned() -> None:
    known = exposed_names() | PINNED | PROMETHEUS_OWN
    queries = [(f"{p.name}: {t}", grafana_to_promql(e)) for p in ALL for t, e in dashboard_queries(p)]
    queries += [(f"alerts.yml: {name}", e) for name, e in alert_queries()]
    unknown = {where: sorted(metric_names(e) - known) for where, e in queries if metric_names(e) - known}
    assert not unknown, unknown


def test_metric_names_reads_selectors_not_functions_or_labels() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (topic, le) (rate(alumni_handler_duration_seconds_bucket{job="x"}[5m])))'
        " / on (service) group_left up offset 5m or vector(0)"
    )
    assert metric_names(expr) == {"alumni_handler_duration_seconds_bucket", "up"}
    assert "alumni_nonexistent_total" not in exposed_names()
    exposed = exposed_names()
    assert {"alumni_consumer_lag_messages", "process_resident_memory_bytes", "alumni_smtp_sends_total"} <= exposed
