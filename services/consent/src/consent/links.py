"""The signed links consent puts in e-mails, and what each one may do.

- preference centre: a member link (purpose "preferences"), reusable until it expires;
- double opt-in confirmation: a member link (purpose "confirm-optin") whose nonce
  names the pending request, so it confirms exactly what was asked, once;
- one-click unsubscribe (RFC 8058): member and purpose, signed (alumni_kit.auth).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from alumni_kit.auth import (
    TokenSigner,
    issue_member_link,
    issue_unsubscribe_token,
    verify_member_link,
    verify_unsubscribe_token,
)
from usn_schemas.ids import new_id

PREFERENCES = "preferences"
CONFIRM_OPTIN = "confirm-optin"


class Links:
    def __init__(self, signer: TokenSigner, base_url: str) -> None:
        self.signer = signer
        self.base = base_url.rstrip("/")

    def preferences(self, member_id: str, ttl_seconds: int, language: str | None = None) -> str:
        token = issue_member_link(self.signer, member_id, PREFERENCES, ttl_seconds, new_id())
        query = {"token": token, **({"lang": language} if language else {})}
        return f"{self.base}/preferences?{urlencode(query)}"

    def preferences_member(self, token: str) -> str:
        """The member a preference-centre token is for (raises InvalidTokenError)."""
        return str(verify_member_link(self.signer, token, PREFERENCES)["sub"])

    def confirmation(self, member_id: str, nonce: str, ttl_seconds: int, language: str) -> str:
        token = issue_member_link(self.signer, member_id, CONFIRM_OPTIN, ttl_seconds, nonce)
        return f"{self.base}/preferences/confirm?{urlencode({'token': token, 'lang': language})}"

    def confirmation_claims(self, token: str) -> tuple[str, str]:
        """(member id, nonce) of a confirmation token (raises InvalidTokenError)."""
        claims = verify_member_link(self.signer, token, CONFIRM_OPTIN)
        return str(claims["sub"]), str(claims["nonce"])

    def unsubscribe(self, member_id: str, purpose: str, ttl_seconds: int) -> str:
        token = issue_unsubscribe_token(self.signer, member_id, purpose, ttl_seconds)
        return f"{self.base}/unsubscribe/{quote(token)}"

    def unsubscribe_claims(self, token: str) -> tuple[str, str]:
        return verify_unsubscribe_token(self.signer, token)
