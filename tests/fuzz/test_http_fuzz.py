"""Property-based fuzzing of every HTTP operation of every service, from the service's own
OpenAPI document (FastAPI's /openapi.json), against the service running as its own
process on the real broker and database (tests/conftest.py).

Every operation gets requests that fit its documented parameters and bodies
(positive) and requests that break them (negative), each without credentials and,
where the operation takes a bearer token, with a valid staff or service token. Every
answer must be: not a 5xx, a status code the operation documents, of a documented
content type, and a body that fits the documented schema (schemathesis' checks).

Bounded and deterministic: Hypothesis is derandomized (the same requests every run,
no example database) and runs at most `EXAMPLES` requests per operation, mode and
credential; a failing request is recorded rather than raised, so nothing is shrunk
(a regression costs no more time than a pass) and the report names every operation
at fault with a reproducing curl.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

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
    response_schema_conformance,
    status_code_conformance,
)

from alumni_kit.auth import TokenSigner, issue_service_token, issue_staff_token, parse_keys
from tests.conftest import SIGNING_KEYS
from tests.stack import ServiceProcess

pytestmark = pytest.mark.real

SIGNER = TokenSigner(parse_keys(SIGNING_KEYS))
# Per operation, generation mode and credential. 3 services x ~50 operations x 2 modes
# (x2 where a token applies) at this count stay within a few minutes on two cores.
EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


@dataclass
class FuzzReport:
    """What was sent and what broke, per operation (`METHOD /path [credential]`)."""

    requests: Counter[str] = field(default_factory=Counter)
    failures: dict[str, list[str]] = field(default_factory=dict)

    def failed(self, label: str, message: str) -> None:
        found = self.failures.setdefault(label, [])
        if len(found) < 3:  # a few reproductions per operation are enough to fix it
            found.append(message)

    def summary(self) -> str:
        return "\n".join(f"{n:4d}  {label}" for label, n in sorted(self.requests.items()))


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


def fuzz_operation(
    operation: schemathesis.APIOperation, base_url: str, session: requests.Session, report: FuzzReport
) -> None:
    variants: list[tuple[str, dict[str, str] | None]] = [("anonymous", None)]
    if takes_bearer(operation):
        kind, token = credential_for(operation.path)
        variants.append((kind, {"authorization": f"Bearer {token}"}))
    for credential, headers in variants:
        for mode in MODES:
            label = f"{operation.method.upper()} {operation.path} [{credential}, {mode.value}]"
            strategy = operation.as_strategy(generation_mode=mode, headers=headers)
            run_examples(strategy, lambda case, label=label: send(case, base_url, session, label, report))


def run_examples(strategy: st.SearchStrategy[schemathesis.Case], check: Callable[[schemathesis.Case], None]) -> None:
    @SETTINGS
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


def fuzz_service(service: ServiceProcess) -> FuzzReport:
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    report = FuzzReport()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            fuzz_operation(result.ok(), service.url, session, report)
    return report


async def fuzz_and_check(service: ServiceProcess) -> None:
    report = await asyncio.to_thread(fuzz_service, service)
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
