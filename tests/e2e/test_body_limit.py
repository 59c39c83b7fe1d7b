"""Bodies far over any sensible size get 413 from every service, fast, without being read whole."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.consent_helpers import staff_headers
from tests.stack import ServiceProcess

pytestmark = pytest.mark.real

HUGE = 50 * 1024 * 1024
CHUNK = 64 * 1024
# 50 MB over loopback is well under a second; reading and parsing it as JSON would take far longer.
FAST_SECONDS = 5.0


def chunks(total: int) -> Iterator[bytes]:
    """A streamed body without Content-Length (chunked transfer encoding)."""
    for _ in range(total // CHUNK):
        yield b"x" * CHUNK


def post(url: str, body: bytes | Iterator[bytes], headers: dict[str, str]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.post(url, content=body, headers={"content-type": "application/json", **headers}, timeout=60)
    return response, time.monotonic() - started


async def test_every_service_answers_a_50_mb_body_413_fast_declared_or_chunked(
    consent_service: ServiceProcess, mailer_service: ServiceProcess, membership_service: ServiceProcess
) -> None:
    consent_service.start()
    mailer_service.start()
    for service in (membership_service, consent_service, mailer_service):
        await service.wait_ready()
    staff = staff_headers("comms")
    targets = [
        (membership_service, "/signup", {}),
        (consent_service, "/consent/import", staff),  # a route with a larger limit (4 MiB)
        (mailer_service, "/campaigns", staff),  # likewise
    ]
    for service, path, headers in targets:
        for body in (b"x" * HUGE, chunks(HUGE)):
            response, seconds = post(service.url + path, body, headers)
            assert response.status_code == 413, (path, response.status_code, response.text[:200])
            assert "bytes at most" in response.json()["detail"]
            assert seconds < FAST_SECONDS, (path, seconds)
            print(f"{path}: 413 after {seconds:.2f} s ({'chunked' if not isinstance(body, bytes) else 'declared'})")
        # The service is unharmed: the same route still answers an ordinary request.
        small, _ = post(service.url + path, b"{}", headers)
        assert small.status_code == 422, (path, small.status_code, small.text[:200])
        assert service.running


async def test_a_body_within_a_routes_larger_limit_is_read(consent_service: ServiceProcess) -> None:
    """2 MiB exceeds the general 1 MiB limit but not the consent import's: it reaches validation."""
    consent_service.start()
    await consent_service.wait_ready()
    big = b'{"evidence": "' + b"e" * (2 * 1024 * 1024) + b'", "items": []}'
    response, _ = post(consent_service.url + "/consent/import", big, staff_headers("comms"))
    assert response.status_code == 422, response.text[:200]
    assert "evidence" in response.text
    over, _ = post(consent_service.url + "/consent/purposes-nowhere", big, staff_headers("comms"))
    assert over.status_code == 413
