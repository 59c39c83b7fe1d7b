"""The signed links membership puts in e-mails.

Each is a member link (alumni_kit.auth) with its own purpose, so a link made for
one flow is refused by the others. Its subject is the sign-up, application or
member it acts on; its nonce names one stored row, which is what makes it single use.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlencode

from alumni_kit.auth import TokenSigner, issue_member_link, verify_member_link

Purpose = Literal["confirm-signup", "verify-application", "login"]
PATHS: dict[Purpose, str] = {
    "confirm-signup": "/signup/confirm",
    "verify-application": "/applications/verify",
    "login": "/login/confirm",
}


class Links:
    def __init__(self, signer: TokenSigner, base_url: str) -> None:
        self.signer = signer
        self.base = base_url.rstrip("/")

    def make(self, purpose: Purpose, subject_id: str, nonce: str, ttl_seconds: int, language: str) -> str:
        token = issue_member_link(self.signer, subject_id, purpose, ttl_seconds, nonce)
        return f"{self.base}{PATHS[purpose]}?{urlencode({'token': token, 'lang': language})}"

    def claims(self, purpose: Purpose, token: str) -> tuple[str, str]:
        """(subject id, nonce) of a genuine, unexpired link; raises InvalidTokenError (ExpiredTokenError)."""
        claims = verify_member_link(self.signer, token, purpose)
        return str(claims["sub"]), str(claims["nonce"])
