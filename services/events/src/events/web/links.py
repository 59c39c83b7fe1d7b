"""The signed links members get by mail: a member link of purpose `events` (what
`alumni-token member-link --member ID --purpose events` issues), in the URL of a page."""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timedelta

from alumni_kit.auth import TokenSigner, issue_member_link

PURPOSE = "events"
# A registration link keeps working a day past the event's start (the page then says it is over).
_GRACE = timedelta(days=1)


def in_english(url: str) -> str:
    """Her link as the English mail gives it: the page opens in English (`?lang=en`)."""
    return f"{url}{'&' if '?' in url else '?'}lang=en"


class Links:
    def __init__(self, signer: TokenSigner, base_url: str) -> None:
        self._signer, self._base = signer, base_url.rstrip("/")

    def register_path(self, event_id: str) -> str:
        return f"/events/{event_id}/register"

    def offer_path(self, event_id: str) -> str:
        return f"/events/{event_id}/offer"

    def cancel_path(self, event_id: str) -> str:
        return f"/events/{event_id}/withdraw"

    def cancel(self, event_id: str, member_id: str, starts_at: datetime, now: datetime) -> str:
        """Cancel her registration or leave the waiting list (the page says so after the start)."""
        return self._url(self.cancel_path(event_id), member_id, starts_at + _GRACE, now)

    def ticket(self, event_id: str, member_id: str, starts_at: datetime, now: datetime) -> str:
        """Her ticket page (check-in code and QR; events/checkin/routes.py)."""
        return self._url(f"/events/{event_id}/ticket", member_id, starts_at + _GRACE, now)

    def register(self, event_id: str, member_id: str, starts_at: datetime, now: datetime) -> str:
        return self._url(self.register_path(event_id), member_id, starts_at + _GRACE, now)

    def offer(self, event_id: str, member_id: str, until: datetime, now: datetime) -> str:
        """Accept or decline: works until the offer expires (the page says so after)."""
        return self._url(self.offer_path(event_id), member_id, until + timedelta(hours=1), now)

    def invitation_template(self, event_id: str) -> str:
        """For the mailer, which signs each recipient's token into `{token}` (campaigns' member_link)."""
        return f"{self._base}{self.register_path(event_id)}?token={{token}}"

    @staticmethod
    def invitation_days(starts_at: datetime, now: datetime) -> int:
        return min(400, max(1, math.ceil((starts_at + _GRACE - now) / timedelta(days=1))))

    def _url(self, path: str, member_id: str, until: datetime, now: datetime) -> str:
        ttl = max(60, int((until - now).total_seconds()))
        token = issue_member_link(self._signer, member_id, PURPOSE, ttl, secrets.token_urlsafe(12))
        return f"{self._base}{path}?token={token}"
