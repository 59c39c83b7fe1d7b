"""The key service for `alumni replay --open`: membership's key API, asked with an operator's token.

Imported only when `--open` is given (it brings the HTTP client).
"""

from __future__ import annotations

from alumni_kit.keyring_http import HttpKeyRing, KeyServiceUnavailableError

__all__ = ["KeyServiceUnavailableError", "OperatorKeyRing"]


class OperatorKeyRing(HttpKeyRing):
    """Membership's key API, asked with an operator's own token (never a service's).
    Keys stay in this process's memory only, for the one replay."""

    def __init__(self, base_url: str, token: str) -> None:
        super().__init__(base_url, None, "operator", cache_seconds=300)
        self._operator_token = token

    def _token(self) -> str:
        return self._operator_token
