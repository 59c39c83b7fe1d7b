"""Property-based fuzzing of every HTTP operation of every service, from the service's own
OpenAPI document (FastAPI's /openapi.json), against the service running as its own
process on the real broker and database (tests/conftest.py).

Every operation gets requests that fit its documented parameters and bodies
(positive) and requests that break them (negative), each without credentials and,
where the operation takes a bearer token, with a valid staff or service token; and
a round of valid requests with U+0000 in every string (PostgreSQL cannot store it).
Every answer must be: not a 5xx, a status code the operation documents, of a
documented content type, a body that fits the documented schema, and a refusal
(4xx) for input the schema rules out (schemathesis' checks).

Bounded and deterministic: Hypothesis is derandomized (the same requests every run,
no example database) and runs at most `EXAMPLES` requests per operation, mode and
credential; a failing request is recorded rather than raised, so nothing is shrunk
(a regression costs no more time than a pass) and the report names every operation
at fault with a reproducing curl.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from alumni_kit.auth import TokenSigner, issue_service_token, issue_staff_token, parse_keys
from tests.conftest import SIGNING_KEYS
from tests.stack import ServiceProcess

# HTTP answers do not depend on the broker's version: one round is enough.
pytestmark = [pytest.mark.real, pytest.mark.once]

SIGNER = TokenSigner(parse_keys(SIGNING_KEYS))
# Requests per operation and generation mode, with the operation's credential (or none, if it
# takes none). The same operation without its token answers 401 before anything else runs, so
# fewer of those suffice. About 2,000 requests over the first three services: under 4 minutes on two cores.
EXAMPLES = 25
UNAUTHENTICATED_EXAMPLES = 5
# A round of valid requests with U+0000 in every string (with the operation's credential).
NUL_EXAMPLES = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
RULES = {"enum", "const", "pattern", "format", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum"}
SETTINGS = hypothesis.settings(
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


@dataclass(frozen=True)
class Budget:
    """Requests per operation: with its credential, without it, and with U+0000 in every string."""

    examples: int = EXAMPLES
    unauthenticated: int = UNAUTHENTICATED_EXAMPLES
    nul: int = NUL_EXAMPLES


# Analytics' read routes (about 35 operations) share one pair of query parameters checked by
# one function (analytics.read.scope), so a few requests each cover them: about 500 in all.
ANALYTICS_BUDGET = Budget(examples=8, unauthenticated=2, nul=4)


@dataclass
class FuzzReport:
    """What was sent and what broke, per operation (`METHOD /path [credential]`)."""

    requests: Counter[str] = field(default_factory=Counter)
    # Wall time per label, generating included: where the suite's minutes go.
    seconds: Counter[str] = field(default_factory=Counter)
    failures: dict[str, list[str]] = field(default_factory=dict)

    def failed(self, label: str, message: str) -> None:
        found = self.failures.setdefault(label, [])
        if len(found) < 3:  # a few reproductions per operation are enough to fix it
            found.append(message)

    def summary(self) -> str:
        lines = [f"{n:4d}  {self.seconds[label]:5.1f} s  {label}" for label, n in sorted(self.requests.items())]
        lines += [
            f"   0  {self.seconds[label]:5.1f} s  {label}" for label in sorted(self.seconds) if not self.requests[label]
        ]
        total = f"{sum(self.requests.values()):4d}  {sum(self.seconds.values()):5.1f} s  in all"
        return "\n".join([*lines, total])


def staff_token() -> str:
    # Communications staff see every faculty and may create campaigns: the widest staff reach.
    return issue_staff_token(SIGNER, "fuzzer", "comms", None, 3600)


def credential_for(path: str) -> tuple[str, str]:
    """The valid bearer token an operation takes: a service's for /internal, staff's otherwise."""
    if path.startswith("/internal/"):
        return "service", issue_service_token(SIGNER, "tests", 3600)
    return "staff", staff_token()


def takes_bearer(operation: schemathesis.APIOperation) -> bool:
    return any(p.location == "header" and p.name.lower() == "authorization" for p in operation.iter_parameters())


def negatable(operation: schemathesis.APIOperation) -> bool:
    """Whether any request can break the operation's schema: a body, or a parameter with a rule.
    (Hypothesis proves the opposite only after hundreds of futile tries: seconds per operation.)"""
    raw = operation.definition.raw
    return "requestBody" in raw or any(constrained(p.get("schema", {})) for p in raw.get("parameters", []))


def constrained(schema: dict[str, Any]) -> bool:
    if "anyOf" in schema:
        return any(constrained(option) for option in schema["anyOf"] if option.get("type") != "null")
    return schema.get("type", "string") != "string" or bool(RULES & schema.keys())


def fuzz_operation(
    operation: schemathesis.APIOperation,
    base_url: str,
    session: requests.Session,
    report: FuzzReport,
    budget: Budget,
) -> None:
    variants: list[tuple[str, dict[str, str] | None, int]] = [("anonymous", None, budget.examples)]
    if takes_bearer(operation):
        kind, token = credential_for(operation.path)
        bearer = {"authorization": f"Bearer {token}"}
        variants = [("anonymous", None, budget.unauthenticated), (kind, bearer, budget.examples)]
    for credential, headers, examples in variants:
        for mode in MODES if negatable(operation) else MODES[:1]:
            strategy = operation.as_strategy(generation_mode=mode, headers=headers)
            rounds = [(mode.value, strategy, examples)]
            if mode.is_positive and headers is variants[-1][1]:
                rounds.append(("NUL", strategy.map(with_nul), budget.nul))
            for name, cases, count in rounds:
                label = f"{operation.method.upper()} {operation.path} [{credential}, {name}]"
                started = time.monotonic()
                run_examples(cases, count, lambda case, label=label: send(case, base_url, session, label, report))
                report.seconds[label] += time.monotonic() - started


def with_nul(case: schemathesis.Case) -> schemathesis.Case:
    """The case with U+0000 in every string it sends (path, query, body): still schema-valid, and
    the one character PostgreSQL's text cannot hold, so it must be refused before the database."""
    case.path_parameters = nul_in(case.path_parameters)
    case.query = nul_in(case.query)
    if isinstance(case.body, dict | list | str):
        case.body = nul_in(case.body)
    return case


def nul_in(value: Any) -> Any:
    if isinstance(value, str):
        return value[: len(value) // 2] + "\x00" + value[len(value) // 2 :]
    if isinstance(value, dict):
        return {k: nul_in(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nul_in(v) for v in value]
    return value


def run_examples(
    strategy: st.SearchStrategy[schemathesis.Case], count: int, check: Callable[[schemathesis.Case], None]
) -> None:
    @hypothesis.settings(SETTINGS, max_examples=count)
    @given(case=strategy)
    def examples(case: schemathesis.Case) -> None:
        check(case)

    # Nothing to negate (an operation without parameters or body): no request to send.
    with contextlib.suppress(hypothesis.errors.Unsatisfiable):
        examples()


def send(case: schemathesis.Case, base_url: str, session: requests.Session, label: str, report: FuzzReport) -> None:
    report.requests[label] += 1
    try:
        case.call_and_validate(base_url=base_url, session=session, checks=CHECKS, timeout=30)
    except FailureGroup as failures:
        report.failed(label, str(failures))
    except requests.RequestException as exc:
        report.failed(label, f"no answer: {exc!r}\n{case.as_curl_command()}")


def fuzz_service(service: ServiceProcess, budget: Budget) -> FuzzReport:
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    report = FuzzReport()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            fuzz_operation(result.ok(), service.url, session, report, budget)
    return report


async def fuzz_and_check(service: ServiceProcess, budget: Budget = Budget()) -> None:
    report = await asyncio.to_thread(fuzz_service, service, budget)
    print(f"\n{service.module}: requests per operation, credential and mode\n{report.summary()}")
    assert report.requests, "the OpenAPI document lists no operation"
    assert not report.failures, "\n\n".join(
        f"== {label}\n" + "\n".join(messages) for label, messages in sorted(report.failures.items())
    )
    assert service.running, f"{service.module} stopped under fuzzing\n{service.tail()}"


async def test_membership_http_api_survives_fuzzing(membership_service: ServiceProcess) -> None:
    membership_service.start()
    await membership_service.wait_ready()
    await fuzz_and_check(membership_service)


async def test_consent_http_api_survives_fuzzing(consent_service: ServiceProcess) -> None:
    consent_service.start()
    await consent_service.wait_ready()
    await fuzz_and_check(consent_service)


async def test_mailer_http_api_survives_fuzzing(mailer_service: ServiceProcess) -> None:
    mailer_service.start()
    await mailer_service.wait_ready()
    await fuzz_and_check(mailer_service)


async def test_events_http_api_survives_fuzzing(events_service: ServiceProcess) -> None:
    events_service.start()
    await events_service.wait_ready()
    await fuzz_and_check(events_service)


async def test_analytics_http_api_survives_fuzzing(analytics_service: ServiceProcess) -> None:
    # Every read route (JSON and CSV), the dashboard and its sign-in; `as_of` and `faculty`
    # fuzzed as the strings they are (an as_of that parses is refused before any build:
    # the topics are empty, so every moment is before the first event).
    analytics_service.start()
    await analytics_service.wait_ready()
    await fuzz_and_check(analytics_service, ANALYTICS_BUDGET)
