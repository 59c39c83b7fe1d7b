"""What the HTTP fuzzer found (tests/fuzz/test_http_fuzz.py), pinned: each was a 500, now a 422 naming the field."""

from __future__ import annotations

import httpx
import pytest

from alumni_kit.auth import issue_service_token
from tests.e2e.consent_helpers import SIGNER, staff_headers
from tests.stack import ServiceProcess

pytestmark = pytest.mark.real


async def test_nul_characters_and_out_of_range_numbers_get_422_naming_the_field(
    membership_service: ServiceProcess,
) -> None:
    membership_service.start()
    await membership_service.wait_ready()
    url, staff = membership_service.url, staff_headers("comms")

    # U+0000 in a query parameter: PostgreSQL's text cannot hold it (was: CharacterNotInRepertoireError, 500).
    search = httpx.get(f"{url}/members", params={"campus": "Bø\x00"}, headers=staff)
    assert search.status_code == 422, search.text
    assert search.json()["detail"][0]["loc"] == ["query", "campus"]

    # ... and in a JSON body (staff API, and the sign-up form's JSON).
    network = httpx.post(f"{url}/networks", json={"name": "Lü\x00", "faculty": "HH"}, headers=staff)
    assert network.status_code == 422, network.text
    assert network.json()["detail"][0]["loc"] == ["body", "name"]
    signup = {"student_number": "123456", "private_email": "a@example.no", "given_name": "K\x00", "family_name": "N"}
    refused = httpx.post(f"{url}/signup", json=signup)
    assert refused.status_code == 422, refused.text
    assert any(problem.startswith("given_name:") for problem in refused.json()["detail"])

    # A key version past int32 (the column's type) is no key: 422, not an OverflowError (500).
    service = {"Authorization": f"Bearer {issue_service_token(SIGNER, 'tests')}"}
    subject = "00000000-0000-4000-8000-000000000000"
    lookup = httpx.post(
        f"{url}/internal/keys/lookup", json={"keys": [{"subject_id": subject, "version": 2**31}]}, headers=service
    )
    assert lookup.status_code == 422, lookup.text
    assert lookup.json()["detail"][0]["loc"] == ["body", "keys", 0, "version"]
    # The same request within range is answered (no such key: an empty list).
    fine = httpx.post(
        f"{url}/internal/keys/lookup", json={"keys": [{"subject_id": subject, "version": 1}]}, headers=service
    )
    assert fine.status_code == 200
    assert fine.json() == {"keys": []}
    assert membership_service.running
