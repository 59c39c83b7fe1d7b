"""The mailer's part of a member's access export (GDPR art. 15)."""

from __future__ import annotations

EXPORT_QUERIES = {
    "member_copy": "SELECT * FROM members WHERE member_id = $1",
    "consent_copy": "SELECT * FROM consent_view WHERE member_id = $1 ORDER BY channel, purpose",
    "newsletters": "SELECT d.*, c.subject AS campaign_subject FROM deliveries d"
    " JOIN campaigns c USING (campaign_id) WHERE d.member_id = $1 ORDER BY d.id",
    "transactional_mail": "SELECT * FROM transactional WHERE member_id = $1 ORDER BY id",
    "suppressions": "SELECT s.* FROM suppressions s JOIN members m ON s.address = lower(m.email)"
    " WHERE m.member_id = $1",
}
