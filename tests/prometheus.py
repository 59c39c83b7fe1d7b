"""A real Prometheus (Debian's `prometheus` binary) watching services the tests started.

Its configuration is made from deploy/prometheus/prometheus.yml (the job, its labels,
metrics path) with the tests' ports, and its rules from deploy/prometheus/alerts.yml
with every duration shortened 60 times (a minute becomes a second): the same
expressions and `for:` clauses, so an alert that fires here fires in production,
in seconds instead of minutes.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"
SPEED_UP = 60  # a minute of the real rules is a second here


def shortened(rules_text: str) -> str:
    """alerts.yml with `for:` durations, range selectors and offsets divided by SPEED_UP."""

    def seconds(n: str, unit: str) -> str:
        total = int(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
        return f"{max(1, total // SPEED_UP)}s"

    text = re.sub(r"(for:\s*)(\d+)([smhd])\b", lambda m: m.group(1) + seconds(m.group(2), m.group(3)), rules_text)
    text = re.sub(r"\[(\d+)([smhd])\]", lambda m: f"[{seconds(m.group(1), m.group(2))}]", text)
    return re.sub(r"(offset\s+)(\d+)([smhd])\b", lambda m: m.group(1) + seconds(m.group(2), m.group(3)), text)


def config(ports: dict[str, int], rules: Path) -> dict[str, Any]:
    """prometheus.yml's usn-alumni job with its targets on 127.0.0.1 at the tests' ports."""
    real = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    (job,) = [j for j in real["scrape_configs"] if j["job_name"] == "usn-alumni"]
    static = []
    for entry in job["static_configs"]:
        service = entry["labels"]["service"]
        if service in ports:
            static.append({"targets": [f"127.0.0.1:{ports[service]}"], "labels": entry["labels"]})
    assert {s["labels"]["service"] for s in static} == set(ports), "a service the tests run is not scraped"
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{**job, "static_configs": static}],
    }


@dataclass
class Prometheus:
    url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5).json()
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = httpx.get(f"{self.url}/api/v1/targets", timeout=5).json()["data"][
            "activeTargets"
        ]
        return active

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = httpx.get(f"{self.url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        return alerts


@contextmanager
def running_prometheus(ports: dict[str, int], port: int, workdir: Path) -> Iterator[Prometheus]:
    rules = workdir / "alerts.yml"
    rules.write_text(shortened((DEPLOY / "alerts.yml").read_text()))
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config(ports, rules)))
    checked = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={path}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (workdir / "prometheus.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Prometheus did not become ready"
            time.sleep(0.2)
        yield Prometheus(url)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
