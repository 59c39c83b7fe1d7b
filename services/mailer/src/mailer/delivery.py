"""One message in the sender's hands, and what the local copies say about sending it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mailer import compose


@dataclass
class Delivery:
    """One message in flight: a campaign delivery (table `deliveries`) or a transactional mail."""

    table: str
    id: int
    member_id: str | None
    address: str
    campaign_id: str | None = None
    faculty: str = "USN"
    purpose: str = ""
    recipient: compose.Recipient | None = None
    consent_fact_id: str | None = None
    mail: dict[str, Any] | None = None  # transactional only
    message_id: str = ""
    probe: bool = False  # sent while the relay is paused, to learn whether it answers again
    outcome: str = ""  # sent | skipped | retry | bounced | failed | unavailable | uncertain
    detail: str = ""
    status_code: str = ""
    # W3C context of the request it came from (transactional mails), for the SMTP span.
    trace_context: dict[str, str] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        """The VERP reference: which delivery a bounce is about."""
        return f"{'c' if self.table == 'deliveries' else 't'}{self.id}"


def skip_reason(row: Any) -> str | None:
    """Why a claimed campaign delivery is not sent, from the mailer's local copies (None: send)."""
    if row["erased"]:
        return "erased"
    if row["given_name"] is None:
        return "unknown-member"
    if row["email"] is None:
        return "no-address"
    if row["suppressed"]:
        return "suppressed"
    if row["consent_fact_id"] is None:
        return "no-consent"
    return None


def transactional_skip_reason(row: Any, mail: dict[str, Any]) -> str | None:
    """Transactional mail ignores marketing consent, not suppression or erasure."""
    if row["erased"]:
        return "erased"
    if row["address"] is None:
        return "no-address"  # a member id the mailer has no address for
    if row["suppressed"]:
        return "suppressed"
    expires = mail.get("expires_at")
    if expires and datetime.fromisoformat(expires) < datetime.now(UTC):
        return "expired"
    return None


def in_language(mail: dict[str, Any], language: str | None) -> dict[str, Any]:
    """The mail in the member's language when the requester wrote it in that one too (its
    `translations`), else as it came: the requester's text for a member of unknown language."""
    translation = (mail.get("translations") or {}).get(language) if language else None
    if not translation:
        return mail
    return {
        **mail,
        "language": language,
        "subject": translation["subject"],
        "body_text": translation["body_text"],
        "action_label": translation.get("action_label") or mail.get("action_label"),
        "action_url": translation.get("action_url") or mail.get("action_url"),
    }


def campaign_delivery(row: Any) -> Delivery:
    return Delivery(
        table="deliveries",
        id=row["id"],
        member_id=row["member_id"],
        address=row["email"],
        campaign_id=row["campaign_id"],
        faculty=row["faculty"],
        purpose=row["purpose"],
        recipient=compose.Recipient(row["member_id"], row["email"], row["given_name"], row["family_name"]),
        consent_fact_id=row["consent_fact_id"],
    )
