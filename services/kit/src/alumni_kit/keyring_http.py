"""Subject keys from membership over HTTP, for every service but membership itself.

Keys are cached in memory for `cache_seconds` only (expired entries are
dropped at the next lookup), and never written to disk: that interval is the
longest a service can still open a message after the member was erased.
Missing keys are not cached, so a key that appears later (a member registered
a moment ago) is found on the next try.
"""

from __future__ import annotations

import base64
import time
from typing import TypeVar

import httpx

from alumni_kit.auth import TokenSigner, issue_service_token
from alumni_kit.shredding import KeyId, KeyRequestRefusedError, SubjectKey

CHUNK = 1000
T = TypeVar("T")


class KeyServiceUnavailableError(OSError):
    """Membership did not answer, or answered 5xx: transient (an OSError), so consumers
    retry and never dead-letter."""


class HttpKeyRing:
    def __init__(self, base_url: str, signer: TokenSigner | None, service: str, cache_seconds: float = 60.0) -> None:
        self._base = base_url.rstrip("/")
        self._signer, self._service = signer, service
        self._ttl = cache_seconds
        self._cache: dict[KeyId, tuple[float, bytes]] = {}
        self._client: httpx.AsyncClient | None = None

    async def lookup(self, wanted: set[KeyId]) -> dict[KeyId, bytes]:
        now = time.monotonic()
        self._cache = {k: hit for k, hit in self._cache.items() if hit[0] > now}
        found = {k: hit[1] for k in wanted if (hit := self._cache.get(k))}
        missing = sorted(wanted - found.keys())
        for chunk in _chunks(missing):
            body: dict[str, object] = {"keys": [{"subject_id": s, "version": v} for s, v in chunk]}
            for key in await self._post("/internal/keys/lookup", body):
                found[key.id] = key.secret
                self._cache[key.id] = (now + self._ttl, key.secret)
        return found

    async def current(self, subject_ids: set[str]) -> dict[str, SubjectKey]:
        found: dict[str, SubjectKey] = {}
        for chunk in _chunks(sorted(subject_ids)):
            found |= {k.subject_id: k for k in await self._post("/internal/keys/current", {"subject_ids": chunk})}
        return found

    async def close(self) -> None:
        """Close the connection pool (a later call opens a new one, e.g. in another event loop)."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _token(self) -> str:
        """The bearer token of a request: a fresh service token (an operator's ring shows its own)."""
        if self._signer is None:
            raise RuntimeError("this key ring has no signer: it must show a token of its own")
        return issue_service_token(self._signer, self._service, ttl_seconds=60)

    async def _post(self, path: str, body: dict[str, object]) -> list[SubjectKey]:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self._base, timeout=10.0)
        try:
            response = await self._client.post(path, json=body, headers={"Authorization": f"Bearer {self._token()}"})
        except httpx.TransportError as exc:
            raise KeyServiceUnavailableError(f"membership keys: {type(exc).__name__}") from None
        if response.status_code >= 500:
            raise KeyServiceUnavailableError(f"membership keys: HTTP {response.status_code}")
        if response.status_code >= 400:
            # 4xx: the request is wrong (a key id the service refuses, our token): trying the
            # same again cannot help, so the message that asked is dead-lettered instead.
            raise KeyRequestRefusedError(f"HTTP {response.status_code}")
        return [_key(item) for item in response.json()["keys"]]


def _chunks(items: list[T]) -> list[list[T]]:
    """Requests of at most CHUNK keys: the key API's limit, below a consumer batch's 10,000."""
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


def _key(item: dict[str, object]) -> SubjectKey:
    secret = base64.b64decode(str(item["secret"]))
    return SubjectKey(str(item["subject_id"]), int(str(item["version"])), secret)
