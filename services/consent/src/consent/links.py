"""The signed links consent puts in e-mails, and what each one may do.

- preference centre: a member link (purpose "preferences"), reusable until it expires;
- double opt-in confirmation: a member link (purpose "confirm-optin") whose nonce
  names the pending request, so it confirms exactly what was asked, once;
- one-click unsubscribe (RFC 8058): member and purpose, signed (alumni_kit.auth; the mailer mints them).
"""

from __future__ import annotations

from urllib.parse import urlencode

from alumni_kit.auth import (
    InvalidTokenError,
    TokenSigner,
    issue_member_link,
    verify_member_link,
    verify_unsubscribe_token,
)
from usn_schemas.ids import new_id

PREFERENCES = "preferences"
# Reached from an unsubscribe page: anyone holding an old mail has that URL, so the
# preference link it leads to can withdraw but not give.
PREFERENCES_WITHDRAW_ONLY = "preferences-withdraw-only"
CONFIRM_OPTIN = "confirm-optin"


class Links:
    def __init__(self, signer: TokenSigner, base_url: str) -> None:
        self.signer = signer
        self.base = base_url.rstrip("/")

    def preferences(self, member_id: str, ttl_seconds: int, language: str | None = None, may_give: bool = True) -> str:
        purpose = PREFERENCES if may_give else PREFERENCES_WITHDRAW_ONLY
        token = issue_member_link(self.signer, member_id, purpose, ttl_seconds, new_id())
        query = {"token": token, **({"lang": language} if language else {})}
        return f"{self.base}/preferences?{urlencode(query)}"

    def preferences_member(self, token: str) -> tuple[str, bool]:
        """(member id, may give consent) of a preference-centre token (raises InvalidTokenError)."""
        claims = self.signer.verify(token, "member-link")
        if claims.get("purpose") not in (PREFERENCES, PREFERENCES_WITHDRAW_ONLY):
            raise InvalidTokenError("not a preferences link")
        return str(claims["sub"]), claims["purpose"] == PREFERENCES

    def confirmation(self, member_id: str, nonce: str, ttl_seconds: int, language: str) -> str:
        token = issue_member_link(self.signer, member_id, CONFIRM_OPTIN, ttl_seconds, nonce)
        return f"{self.base}/preferences/confirm?{urlencode({'token': token, 'lang': language})}"

    def confirmation_claims(self, token: str) -> tuple[str, str]:
        """(member id, nonce) of a confirmation token (raises InvalidTokenError)."""
        claims = verify_member_link(self.signer, token, CONFIRM_OPTIN)
        return str(claims["sub"]), str(claims["nonce"])

    def unsubscribe_claims(self, token: str) -> tuple[str, str]:
        return verify_unsubscribe_token(self.signer, token)
