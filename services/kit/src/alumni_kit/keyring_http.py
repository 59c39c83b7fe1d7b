"""Subject keys from membership over HTTP, for every service but membership itself.

Keys are cached in memory for `cache_seconds` only, and never written to disk:
that interval is the longest a service can still open a message after the
member was erased (plus the time its own `member-erased` handler takes, which
drops the key at once). Missing keys are not cached, so a key that appears
later (a member registered a moment ago) is found on the next try.
"""

from __future__ import annotations

import base64
import time

import httpx

from alumni_kit.auth import TokenSigner, issue_service_token
from alumni_kit.shredding import KeyId, SubjectKey


class KeyServiceUnavailableError(OSError):
    """Membership did not answer: transient (an OSError), so consumers retry and never dead-letter."""


class HttpKeyRing:
    def __init__(self, base_url: str, signer: TokenSigner, service: str, cache_seconds: float = 60.0) -> None:
        self._base = base_url.rstrip("/")
        self._signer, self._service = signer, service
        self._ttl = cache_seconds
        self._cache: dict[KeyId, tuple[float, bytes]] = {}
        self._client: httpx.AsyncClient | None = None

    async def lookup(self, wanted: set[KeyId]) -> dict[KeyId, bytes]:
        now = time.monotonic()
        found = {k: hit[1] for k in wanted if (hit := self._cache.get(k)) and hit[0] > now}
        missing = wanted - found.keys()
        if missing:
            body: dict[str, object] = {"keys": [{"subject_id": s, "version": v} for s, v in sorted(missing)]}
            for key in await self._post("/internal/keys/lookup", body):
                found[key.id] = key.secret
                self._cache[key.id] = (now + self._ttl, key.secret)
        return found

    async def current(self, subject_ids: set[str]) -> dict[str, SubjectKey]:
        if not subject_ids:
            return {}
        keys = await self._post("/internal/keys/current", {"subject_ids": sorted(subject_ids)})
        return {k.subject_id: k for k in keys}

    def forget(self, subject_id: str) -> None:
        """Drop a subject's cached keys at once (her `member-erased` arrived)."""
        for key_id in [k for k in self._cache if k[0] == subject_id]:
            del self._cache[key_id]

    async def close(self) -> None:
        """Close the connection pool (a later call opens a new one, e.g. in another event loop)."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _post(self, path: str, body: dict[str, object]) -> list[SubjectKey]:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self._base, timeout=10.0)
        token = issue_service_token(self._signer, self._service, ttl_seconds=60)
        try:
            response = await self._client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
        except httpx.TransportError as exc:
            raise KeyServiceUnavailableError(f"membership keys: {type(exc).__name__}") from None
        if response.status_code >= 500:
            raise KeyServiceUnavailableError(f"membership keys: HTTP {response.status_code}")
        response.raise_for_status()  # 4xx: our token or request is wrong, a bug to see, not to retry
        return [_key(item) for item in response.json()["keys"]]


def _key(item: dict[str, object]) -> SubjectKey:
    secret = base64.b64decode(str(item["secret"]))
    return SubjectKey(str(item["subject_id"]), int(str(item["version"])), secret)
