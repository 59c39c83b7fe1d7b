"""docker-compose.yml, the Kubernetes base and scripts/platform agree with the services' own settings.

No Docker engine and no cluster: the files are read as data and compared with what
the code declares. Each service's environment names come from its pydantic settings
class (prefix + field, or the field's alias), so a variable that compose or a
ConfigMap sets and no service reads (a typo, a renamed setting) fails here, as does
a port, an image, a command or a topic that differs between the three.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from alumni_kit.settings import ServiceSettings
from alumni_kit.topics import PLATFORM_TOPICS, TOPIC_KEYS
from alumni_kit.topics import main as topics_main
from usn_tools import asyncapi

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "k8s" / "base"
SERVICES = sorted(p.parent.name for p in ROOT.glob("services/*/src/*/settings.py") if p.parent.name != "alumni_kit")
# Read by the image's entrypoint and by the OpenTelemetry SDK, not by the settings classes.
NOT_SETTINGS = {"SERVICE", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_RESOURCE_ATTRIBUTES"}
IMAGE = "usn-alumni"


def settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"{service}.settings")
    (cls,) = [
        c
        for c in vars(module).values()
        if isinstance(c, type) and issubclass(c, ServiceSettings) and c is not ServiceSettings
    ]
    return cls


def env_names(cls: type[ServiceSettings]) -> set[str]:
    """Every environment variable the settings class reads (pydantic-settings' rules)."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names = set()
    for field_name, info in cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {c for c in alias.choices if isinstance(c, str) and c.isupper()}
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add((prefix + field_name).upper())
    return names


def prefix(service: str) -> str:
    return service.upper() + "_"


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # resolves the << anchors
    return doc


def k8s_docs(*paths: Path) -> list[dict[str, Any]]:
    return [d for p in paths for d in yaml.safe_load_all(p.read_text()) if d and d.get("kind") != "Kustomization"]


def k8s_service(service: str) -> dict[str, Any]:
    """A service's Deployment, Service and the environment its pod gets (ConfigMaps, Secrets, env)."""
    docs = k8s_docs(*sorted((BASE / service).glob("*.yaml")), BASE / "alumni-common.yaml")
    by_kind: dict[tuple[str, str], dict[str, Any]] = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    deployment = by_kind[("Deployment", service)]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        kind, ref = (
            ("ConfigMap", source["configMapRef"]) if "configMapRef" in source else ("Secret", source["secretRef"])
        )
        data = by_kind[(kind, ref["name"])]
        env |= {k: str(v) for k, v in (data.get("data") or data.get("stringData") or {}).items()}
    env |= {e["name"]: str(e.get("value", "")) for e in container.get("env", [])}
    return {"deployment": deployment, "container": container, "service": by_kind[("Service", service)], "env": env}


def platform_ports() -> dict[str, int]:
    text = (ROOT / "scripts" / "platform").read_text()
    return {m[0]: int(m[1]) for m in re.findall(r'\[(\w+)\]="\$\{\w+_HTTP_PORT:-(\d+)\}"', text)}


def test_every_service_is_deployed_everywhere() -> None:
    assert SERVICES, "no services found"
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    platform = (ROOT / "scripts" / "platform").read_text()
    listed = re.search(r"^SERVICES=\(([^)]*)\)", platform, re.M)
    assert listed is not None
    for service in SERVICES:
        assert service in compose()["services"], f"{service} missing in docker-compose.yml"
        assert service in kustomization["resources"], f"{service} missing in deploy/k8s/base/kustomization.yaml"
        assert service in listed.group(1).split(), f"{service} missing in scripts/platform SERVICES"
        assert service in asyncapi.SERVICES, f"{service} missing in usn_tools.asyncapi"


@pytest.mark.parametrize("service", SERVICES)
def test_compose_and_k8s_set_only_variables_the_service_reads(service: str) -> None:
    known = env_names(settings_class(service)) | NOT_SETTINGS
    compose_env = set(compose()["services"][service]["environment"])
    k8s = k8s_service(service)
    # Kubernetes expands $(NAME) in env values from the pod's other variables: those are read.
    expanded = {n for e in k8s["container"].get("env", []) for n in re.findall(r"\$\((\w+)\)", e.get("value", ""))}
    k8s_env = set(k8s["env"])
    assert not compose_env - known, f"docker-compose.yml sets what {service} does not read"
    assert not k8s_env - known - expanded, f"the Kubernetes base sets what {service} does not read"
    # What a deployed service cannot do without: where the broker, its database and its port are.
    for needed in ("KAFKA_BOOTSTRAP", "DATABASE_URL", "HTTP_HOST", "HTTP_PORT", "OTEL_EXPORTER"):
        assert prefix(service) + needed in compose_env, f"compose: {prefix(service)}{needed}"
        assert prefix(service) + needed in k8s_env, f"k8s: {prefix(service)}{needed}"
    assert {"ALUMNI_SIGNING_KEYS", "ALUMNI_TOPIC_PREFIX", "ALUMNI_MEMBERSHIP_URL"} <= compose_env & k8s_env


@pytest.mark.parametrize("service", SERVICES)
def test_ports_agree(service: str) -> None:
    port = int(settings_class(service).model_fields["http_port"].default)
    composed = compose()["services"][service]
    k8s = k8s_service(service)
    assert int(composed["environment"][prefix(service) + "HTTP_PORT"]) == port
    assert f"127.0.0.1:{port}:{port}" in composed["ports"]
    assert composed["environment"][prefix(service) + "HTTP_HOST"] == "0.0.0.0"
    assert int(k8s["env"][prefix(service) + "HTTP_PORT"]) == port
    assert k8s["env"][prefix(service) + "HTTP_HOST"] == "0.0.0.0"
    assert {p["name"]: p["containerPort"] for p in k8s["container"]["ports"]}["http"] == port
    annotations = k8s["deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == port
    assert {p["name"]: p["port"] for p in k8s["service"]["spec"]["ports"]}["http"] == port
    assert platform_ports()[service] == port
    # Prometheus scrapes and probes it there (job usn-alumni, label service).
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prometheus["scrape_configs"]}
    targets = {t["labels"]["service"]: t["targets"] for t in jobs["usn-alumni"]["static_configs"]}
    assert targets[service] == [f"{service}:{port}"]
    probes = {t["labels"]["service"]: t["targets"] for t in jobs["usn-alumni-readyz"]["static_configs"]}
    assert probes[service] == [f"http://{service}:{port}/readyz"]


@pytest.mark.parametrize("service", SERVICES)
def test_images_and_commands(service: str) -> None:
    """One image; SERVICE names the module the entrypoint runs as `python -m $SERVICE`."""
    composed = compose()["services"][service]
    k8s = k8s_service(service)
    assert composed["image"].split(":")[0] == IMAGE
    assert composed["environment"]["SERVICE"] == service
    assert k8s["container"]["image"] == IMAGE
    assert k8s["env"]["SERVICE"] == service
    assert importlib.util.find_spec(f"{service}.__main__") is not None
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'python -m "$SERVICE"' in dockerfile or "python -m $SERVICE" in dockerfile


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_gets_a_database_in_compose(service: str) -> None:
    postgres = compose()["services"]["postgres"]["environment"]
    assert service in postgres["ALUMNI_DATABASES"].split()
    assert f"{service.upper()}_DB_PASSWORD" in postgres
    init = (ROOT / "deploy" / "postgres-init" / "10-service-databases.sh").read_text()
    assert service in init, "postgres-init's default list"


def test_membership_exports_from_every_other_service() -> None:
    """The access export (GDPR art. 15) asks every other service for its part, in both stacks."""
    others = {s for s in SERVICES if s != "membership"}
    composed = json.loads(compose()["services"]["membership"]["environment"]["MEMBERSHIP_EXPORT_SERVICES"])
    k8s = json.loads(k8s_service("membership")["env"]["MEMBERSHIP_EXPORT_SERVICES"])
    ports = platform_ports()
    assert set(composed) == set(k8s), "compose and Kubernetes ask different services"
    assert set(composed) <= others
    for service, url in composed.items():
        assert url == f"http://{service}:{ports[service]}"
        assert k8s[service] == url


def test_topics_are_created_from_one_declaration_everywhere() -> None:
    """compose's job, the Kubernetes Job and scripts/platform all run alumni_kit.topics."""
    job = compose()["services"]["topics"]
    assert job["environment"]["SERVICE"] == "alumni_kit.topics"
    assert job["image"].split(":")[0] == IMAGE
    (k8s_job,) = k8s_docs(BASE / "topics-job.yaml")
    (container,) = k8s_job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == IMAGE
    assert {e["name"]: e["value"] for e in container["env"]}["SERVICE"] == "alumni_kit.topics"
    assert "python -m alumni_kit.topics" in (ROOT / "scripts" / "platform").read_text()
    # Their arguments are options alumni-topics has (argparse exits 2 on an unknown one).
    for args in (job["command"], container["args"]):
        options = [a for a in args if a.startswith("--")]
        assert options == ["--bootstrap", "--prefix"]
    with pytest.raises(SystemExit) as refused:
        topics_main(["--no-such-option"])
    assert refused.value.code == 2
    # Nothing else makes topics: the brokers refuse to create them on first use.
    assert compose()["services"]["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "auto.create.topics.enable=false" in (ROOT / "deploy/kafka/server.properties.template").read_text()


def _used_topics(service: str) -> tuple[set[str], set[str]]:
    """(consumed, produced) topics of a service, from its runtime (through its AsyncAPI document)."""
    doc = asyncapi.document(service)
    used: dict[str, set[str]] = {"receive": set(), "send": set()}
    for op in doc["operations"].values():
        channel = doc["channels"][op["channel"]["$ref"].rsplit("/", 1)[1]]
        used[op["action"]].add(channel["address"])
    return used["receive"], used["send"]


@pytest.mark.parametrize("service", sorted(asyncapi.SERVICES))
def test_every_topic_a_service_uses_is_declared_with_partitions_and_a_dlq(service: str) -> None:
    declared = {t.name: t for t in PLATFORM_TOPICS}
    consumed, produced = _used_topics(service)
    assert consumed | produced, service
    for topic in consumed | produced:
        assert topic in declared, f"{service} uses {topic}, which alumni_kit.topics does not declare"
        assert declared[topic].partitions >= 1
        assert topic in TOPIC_KEYS
    for topic in consumed:
        # A consumer dead-letters to <topic>.dlq: it must exist, the broker creates nothing.
        assert f"{topic}.dlq" in declared, f"{service} consumes {topic} without a declared {topic}.dlq"


def test_asyncapi_documents_carry_the_declared_partitions() -> None:
    declared = {t.name: t for t in PLATFORM_TOPICS}
    for path in sorted((ROOT / "schemas" / "asyncapi").glob("*.json")):
        doc = json.loads(path.read_text())
        for channel in doc["channels"].values():
            binding = channel["bindings"]["kafka"]
            assert binding["partitions"] == declared[channel["address"]].partitions, (path.name, channel["address"])


def test_the_operations_topic_table_matches_the_declaration() -> None:
    """docs/operations.md's topic table: every declared topic (DLQs: described once), partitions, retention."""
    text = (ROOT / "docs" / "operations.md").read_text()
    table = text[text.index("| topic | partitions |") : text.index("Each consumed topic has its")]
    documented: dict[str, tuple[int, str]] = {}
    for row in table.splitlines()[2:]:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) < 3:
            continue
        for name in re.findall(r"`([^`]+)`", cells[0]):
            documented[name] = (int(cells[1]), cells[2])
    for spec in PLATFORM_TOPICS:
        if spec.name.endswith(".dlq") and spec.name not in documented:
            continue
        assert spec.name in documented, f"{spec.name} is not in docs/operations.md's topic table"
        partitions, retention = documented[spec.name]
        assert partitions == spec.partitions, spec.name
        days = spec.retention_ms // (24 * 3600 * 1000)
        assert retention.startswith("forever" if spec.retention_ms < 0 else f"{days} days"), (spec.name, retention)
